"""Capacity: what each host has (inventory), and where a replica fits (placement)."""
