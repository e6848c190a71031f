"""Authentication: the AK/SK request signature (signing.py, with httpdate, authorization, mac and
signature_errors beside it), access keys, passwords, the secret vault and login throttling."""
