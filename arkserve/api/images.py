"""Images in the platform registry: list (yours, or the public ones), tags, visibility, delete, push commands,
quotas. Tags, digests and sizes are read from the registry itself (``registry.catalogue``); the store keeps
who owns a repository and whether it is public. Deleting is refused while a service runs the image."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from arkserve.api import cursors
from arkserve.api.registry_token import catalogue, quota_bytes
from arkserve.api.security import Caller, Context, Principal
from arkserve.errors import Conflict, Forbidden, NotFound, ValidationFailed
from arkserve.registry.catalogue import Tag
from arkserve.registry.names import (
    DIGEST_RE,
    PUBLIC_NAMESPACE,
    in_registry,
    parse_reference,
    resolve_short,
    valid_repository,
)
from arkserve.registry.policy import Requester, decide
from arkserve.registry.tokens import Access
from arkserve.schemas import (
    ImageQuotaIn,
    ImageQuotaOut,
    ImageRepositoryOut,
    ImageTagOut,
    ImageVisibility,
    PushCommandsOut,
)
from arkserve.store import image_pages
from arkserve.store import images as image_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.image_pages import ImageFilters
from arkserve.store.users import User

router = APIRouter(tags=["images"])


def _name(caller: Principal, name: str) -> str:
    """A repository name from the caller's words: ``app`` means ``<user>/app``."""
    full = name if "/" in name else f"{caller.user.username}/{name}"
    if not valid_repository(full):
        raise ValidationFailed(f'"{name}": a repository is <namespace>/<name> in lower case letters, digits and '
                               "._- separators", field="name")
    return full


def _repo_out(ctx: Context, name: str, owner: str, public: bool, tags: list[Tag]) -> ImageRepositoryOut:
    address = ctx.settings.registry_address
    outs = [ImageTagOut(tag=t.name, digest=t.digest, size=t.size, pushed_at=t.pushed_at,
                        image=f"{address}/{name}:{t.name}") for t in tags]
    newest = max(outs, key=lambda t: t.pushed_at or 0.0, default=None)
    return ImageRepositoryOut(name=name, owner=owner, public=public, tags=outs, size=sum(t.size for t in outs),
                              pull=f"docker pull {newest.image}" if newest else "")


def _visible(ctx: Context, caller: Principal, name: str) -> tuple[str, bool]:
    """(owner, public) of a repository the caller may see; 404 otherwise (private looks missing)."""
    with ctx.store.read() as conn:
        row = image_store.find(conn, name)
    namespace = name.split("/", 1)[0]
    public = namespace == PUBLIC_NAMESPACE or (row is not None and row.public)
    if not (public or namespace == caller.user.username or caller.user.is_admin):
        raise NotFound(f'image repository "{name}" not found', code="ImageNotFound")
    return (row.owner if row else namespace), public


@router.get("/images", response_model=list[ImageRepositoryOut], responses={200: {"headers": cursors.HEADERS}},
            summary="Image repositories in name order, a page at a time: yours (default), or the public ones "
                    "(?public=true)")
def list_images(caller: Caller, ctx: Context, request: Request, response: Response, public: bool = False,
                prefix: str = Query("", max_length=255, description="Only names (or a part after a '/') starting "
                                                                    "with this."),
                owner: str = Query("", max_length=64, description="Only this user's namespace (admins: anyone's; "
                                                                  "with public=true: their public ones)."),
                limit: int = Query(50, ge=1, le=500, description="Repositories per page."),
                cursor: str | None = Query(None, description="X-Next-Cursor of the previous page.")
                ) -> list[ImageRepositoryOut]:
    shown = {"list": "images", "public": "true" if public else "", "prefix": prefix, "owner": owner}
    after = cursors.decode(cursor, shown) if cursor else None
    me = caller.user.username
    if not public and owner and owner != me and not caller.user.is_admin:
        cursors.set_headers(response, request, 0, None)  # a filter never widens the scope: none of yours is theirs
        return []
    namespace = owner if public else owner or me
    f = ImageFilters(public=public, namespace=namespace, prefix=prefix, public_namespace=PUBLIC_NAMESPACE)
    out: list[ImageRepositoryOut] = []
    total: int | None = None
    more = True
    with catalogue(ctx) as cat:
        while more and len(out) < limit:  # a repository with no tag left is not shown: the next one fills in
            with ctx.store.read() as conn:
                page = image_pages.page(conn, f, after=after, limit=limit - len(out))
            total = page.total if total is None else total
            for row in page.rows:
                if tags := cat.tags(row.name):
                    always = row.name.startswith(PUBLIC_NAMESPACE + "/")
                    out.append(_repo_out(ctx, row.name, row.owner, row.public or always, tags))
            more = page.last is not None
            after = page.rows[-1].name if page.rows else after
    cursors.set_headers(response, request, total or 0,
                        cursors.encode(after, shown) if more and after is not None else None)
    return out


@router.get("/images/push-commands", response_model=PushCommandsOut,
            summary="The docker login, tag and push lines for you and this registry")
def push_commands(caller: Caller, ctx: Context, name: str = "my-app", tag: str = "v1",
                  local_image: str = Query("my-app:latest", alias="local")) -> PushCommandsOut:
    address, user = ctx.settings.registry_address, caller.user.username
    target = f"{address}/{user}/{name}:{tag}"
    login = f"docker login {address} -u {user}"
    key_login = f"docker login {address} -u {caller.access_key or '<AK>'}"  # password: the SK
    tag_line, push = f"docker tag {local_image} {target}", f"docker push {target}"
    return PushCommandsOut(registry=address, username=user, namespace=f"{user}/", login=login,
                           login_with_key=key_login, tag=tag_line, push=push, commands=[login, tag_line, push])


@router.get("/images/quota", response_model=ImageQuotaOut, summary="Registry storage used and allowed "
            "(yours; admins: ?username=)")
def get_quota(caller: Caller, ctx: Context, username: str | None = None) -> ImageQuotaOut:
    user = caller.user
    if username and username != user.username:
        caller.require_admin()
        with ctx.store.read() as conn:
            user = user_store.get(conn, username)
    with catalogue(ctx) as cat:
        used = cat.namespace_bytes(user.username)
    return ImageQuotaOut(username=user.username, used_bytes=used, quota_bytes=quota_bytes(ctx, user))


@router.put("/images/quota/{username}", response_model=ImageQuotaOut, summary="Set a user's registry quota (admin)")
def set_quota(username: str, body: ImageQuotaIn, caller: Caller, ctx: Context) -> ImageQuotaOut:
    caller.require_admin()
    with ctx.store.begin() as conn:
        user = user_store.get(conn, username)
        image_store.set_quota(conn, user.id, body.quota_bytes)
    return get_quota(caller, ctx, username)


@router.get("/images/{name:path}", response_model=ImageRepositoryOut, summary="One repository and its tags")
def get_image(name: str, caller: Caller, ctx: Context) -> ImageRepositoryOut:
    full = _name(caller, name)
    owner, public = _visible(ctx, caller, full)
    with catalogue(ctx) as cat:
        tags = cat.tags(full)
    if not tags:
        raise NotFound(f'image repository "{full}" not found (or has no tags)', code="ImageNotFound")
    return _repo_out(ctx, full, owner, public, tags)


def _may_change(caller: Principal, ctx: Context, name: str) -> None:
    _visible(ctx, caller, name)
    namespace = name.split("/", 1)[0]
    if namespace != caller.user.username and not caller.user.is_admin:
        raise Forbidden(f"only {namespace} (or an admin) may change {name}", code="AccessDenied")


@router.put("/images/{name:path}/visibility", response_model=ImageRepositoryOut,
            summary="Make a repository public (everyone may pull it) or private")
def set_visibility(name: str, body: ImageVisibility, caller: Caller, ctx: Context) -> ImageRepositoryOut:
    full = _name(caller, name)
    _may_change(caller, ctx, full)
    if full.startswith(PUBLIC_NAMESPACE + "/") and not body.public:
        raise ValidationFailed(f"{PUBLIC_NAMESPACE}/ repositories are always public", field="public")
    with catalogue(ctx) as cat:
        if not cat.tag_names(full):
            raise NotFound(f'image repository "{full}" not found', code="ImageNotFound")
    namespace = full.split("/", 1)[0]
    with ctx.store.begin() as conn:
        owner = user_store.find(conn, namespace)
        image_store.set_public(conn, full, owner.id if owner else caller.user.id, body.public)
    return get_image(full, caller, ctx)


def users_of(ctx: Context, caller: Principal, name: str, tags: set[str] | None, digest: str = "") -> list[str]:
    """Services that lose their image when ``name`` goes: the whole repository (``tags`` None), or the tags
    ``tags`` and the manifest ``digest`` ('' when the manifest stays). A service pinned by digest runs that
    manifest whatever its tags; one with a tag (``latest`` when none) runs that tag.

    Only the services of the repository's owner (its namespace) and of the caller count: the owner may always
    delete their own image, and another user's service running it (it was public) is neither counted nor
    named; it fails at its next start with ImageNotFound or ImagePullDenied. In ``ark-public/``, which only
    admins change, every service counts."""
    address = ctx.settings.registry_address
    namespace = name.split("/", 1)[0]
    with ctx.store.read() as conn:
        services = service_store.list_all(conn)
    out = []
    for svc in services:
        if namespace != PUBLIC_NAMESPACE and svc.owner not in (namespace, caller.user.username):
            continue
        ref = in_registry(str(svc.spec.get("image", "")), address, ctx.settings.registry_listen)
        if ref is None or ref.repository != name:
            continue
        pinned = ref.digest == digest  # public content address
        if tags is None or (pinned if ref.digest else (ref.tag or "latest") in tags):
            out.append(svc.name)
    return out


def _refuse_if_used(ctx: Context, caller: Principal, what: str, name: str, tags: set[str] | None,
                    digest: str = "") -> None:
    used = users_of(ctx, caller, name, tags, digest)
    if used:
        raise Conflict(f'{what} is used by service "{used[0]}"' + (f" (and {len(used) - 1} more)" if len(used) > 1
                       else "") + "; delete the service or move it to another image first", code="ImageInUse")


@router.delete("/images/{ref:path}", status_code=204,
               summary="Delete a tag (NAME:TAG), one manifest and every tag naming it (NAME@DIGEST) or a whole "
                       "repository (NAME); refused while a service of yours uses it. X-Deleted-Tags: the tags "
                       "that went")
def delete_image(ref: str, caller: Caller, ctx: Context) -> Response:
    parsed = parse_reference(ref)
    full = _name(caller, parsed.repository)
    _may_change(caller, ctx, full)
    if parsed.digest and (parsed.tag or not DIGEST_RE.match(parsed.digest)):
        raise ValidationFailed(f'"{ref}": delete NAME:TAG, NAME@sha256:<64 hex digits> (that manifest and every '
                               "tag naming it) or NAME (the whole repository)", field="ref")
    with catalogue(ctx) as cat:
        tags = cat.tags(full)
        if parsed.digest:
            digest = parsed.digest
            gone = [t.name for t in tags if t.digest == digest]  # public content address
            try:
                cat.manifest(full, digest)
            except NotFound:
                raise NotFound(f'image "{full}@{digest}" not found', code="ImageNotFound") from None
            _refuse_if_used(ctx, caller, f"{full}@{digest}", full, set(gone), digest)
            cat.delete_manifest(full, digest)
        elif parsed.tag:
            tag = parsed.tag
            digest = next((t.digest for t in tags if t.name == tag), "")  # public content address
            if not digest:
                raise NotFound(f'image "{full}:{tag}" not found', code="ImageNotFound")
            # another tag names the manifest too: then it stays
            shared = any(t.digest == digest and t.name != tag for t in tags)  # public content address
            _refuse_if_used(ctx, caller, f"{full}:{tag}", full, {tag}, "" if shared else digest)
            cat.delete_tag(full, tag)
            gone = [tag]
        else:
            if not tags:
                raise NotFound(f'image repository "{full}" not found', code="ImageNotFound")
            _refuse_if_used(ctx, caller, full, full, None)
            gone = [t.name for t in tags]
            cat.delete_repository(full)
            with ctx.store.begin() as conn:
                image_store.remove(conn, full)
    return Response(status_code=204, headers={"X-Deleted-Tags": ",".join(gone)})



def service_image(ctx: Context, owner: User, image: str) -> str:
    """A service's image as stored: the short form ``app:v1`` resolved to ``<registry>/<owner>/app:v1`` (Docker
    and Kubernetes runtimes), and a registry image checked: the owner may pull it, and only a runtime that pulls
    images (docker, kubernetes) runs it. The registry by any of its names (``localhost:PORT``, ``[::1]:PORT``,
    its host in upper case...) is the registry: checked the same, and kept as the owner wrote it."""
    s = ctx.settings
    address = s.registry_address if s.registry.enabled else ""
    pulls = s.runtime.kind in ("docker", "kubernetes")
    if pulls and address:
        image = resolve_short(image, address, owner.username)
    ref = in_registry(image, address, s.registry_listen)
    if ref is None:
        return image
    if not pulls:
        raise ValidationFailed(f"image: {image} is in the platform registry; registry images run on the Docker "
                               "runtime (start the platform with `arkserve up --runtime docker`)", field="image")
    with ctx.store.read() as conn:
        row = image_store.find(conn, ref.repository)
    decision = decide(Requester(owner.username, owner.is_admin), Access("repository", ref.repository, ("pull",)),
                      is_public=lambda _name: row is not None and row.public)
    if decision.granted is None:
        raise ValidationFailed(f"image: {owner.username} may not pull {ref.repository}: {decision.refusal}",
                               field="image")
    return image
