"""Publish the built web dashboard (``web/dist``) to a deployed stack's site bucket.

The stack creates the private bucket and the CloudFront distribution and names them in its
outputs; it copies no file itself (no custom-resource Lambda). :func:`publish` does, after the
stack deploys:

1. checks the whole build before touching the bucket: ``index.html`` is there, every file has a
   known content type (the CDN sends ``nosniff``, so a wrong type breaks the page), no symlink;
2. uploads the hashed assets first, then ``config.json`` (written here with the stack's
   ``ApiUrl``, never the build's), then ``index.html`` last: a viewer never gets an
   ``index.html`` naming an asset that is not there yet;
3. deletes the files of the builds before the previous one: every object carries the build it
   came with (``x-amz-meta-cst-build``, a digest of its ``index.html``), and the previous
   build's files stay one more publish, so a viewer (or a CDN edge, until the invalidation
   completes) still holding the previous ``index.html`` loads every file it names, lazily
   loaded chunks too. The bucket is versioned: deleted builds stay recoverable for 30 days;
4. invalidates the three paths whose names do not change between builds (``/``,
   ``/index.html``, ``/config.json``); the hashed assets are new names.

A failure before step 2 changes nothing; a failure later leaves the previous ``index.html`` in
place with every file it names, and publishing again completes the build.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "CONFIG_FILE",
    "INDEX_FILE",
    "INVALIDATED_PATHS",
    "OUTPUT_API_URL",
    "OUTPUT_BUCKET",
    "OUTPUT_DISTRIBUTION",
    "OUTPUT_URL",
    "PublishError",
    "Published",
    "SiteFile",
    "SiteTarget",
    "plan",
    "publish",
    "site_target",
]

# The stack outputs the publisher reads (infra/stacks/service_stack.py writes them).
OUTPUT_BUCKET: Final = "DashboardBucketName"
OUTPUT_DISTRIBUTION: Final = "DashboardDistributionId"
OUTPUT_URL: Final = "DashboardUrl"
OUTPUT_API_URL: Final = "ApiUrl"

INDEX_FILE: Final = "index.html"
CONFIG_FILE: Final = "config.json"
INVALIDATED_PATHS: Final = ("/", f"/{INDEX_FILE}", f"/{CONFIG_FILE}")
BUILD_COMMAND: Final = "make web"

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
}
# Names that stay the same from one build to the next are revalidated on every load; Vite's
# hashed assets (``assets/<name>-<hash>.<ext>``) never change under the same name.
REVALIDATE: Final = "no-cache"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
SHORT: Final = "public, max-age=300"
BUILD_METADATA: Final = "cst-build"  # S3 user metadata: x-amz-meta-cst-build


class PublishError(RuntimeError):
    """The build or the stack is not fit to publish; the message says what to run."""


@dataclass(frozen=True)
class SiteTarget:
    """Where a stack serves its dashboard (from its outputs)."""

    stack_name: str
    bucket: str
    distribution_id: str
    api_url: str
    url: str


@dataclass(frozen=True)
class SiteFile:
    key: str
    body: bytes
    content_type: str
    cache_control: str


@dataclass(frozen=True)
class Published:
    build: str
    uploaded: tuple[str, ...]
    kept: tuple[str, ...]  # the previous build's files, still named by cached pages
    deleted: tuple[str, ...]
    invalidation_id: str


def build_id(index_html: bytes) -> str:
    """A build's identity: its page names every hashed asset, so its digest differs per build."""
    return hashlib.sha256(index_html).hexdigest()[:16]


def site_target(cloudformation: Any, stack_name: str) -> SiteTarget:
    """The site bucket, distribution and API URL from the deployed stack's outputs."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as exc:  # no such stack, no credentials, no network
        raise PublishError(
            f"cannot read stack {stack_name!r}: {exc} (deploy it first: make deploy)"
        ) from exc
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    wanted = (OUTPUT_BUCKET, OUTPUT_DISTRIBUTION, OUTPUT_API_URL, OUTPUT_URL)
    missing = [key for key in wanted if not outputs.get(key)]
    if missing:
        raise PublishError(
            f"stack {stack_name!r} has no output {', '.join(missing)}: it predates the "
            "dashboard; deploy the current stack first (make deploy)"
        )
    api_url = outputs[OUTPUT_API_URL]
    parsed = urlparse(api_url)
    if parsed.scheme not in {"https", "http"} or not parsed.netloc:
        raise PublishError(
            f"stack {stack_name!r} output {OUTPUT_API_URL} is not a URL: {api_url!r}"
        )
    return SiteTarget(
        stack_name=stack_name,
        bucket=outputs[OUTPUT_BUCKET],
        distribution_id=outputs[OUTPUT_DISTRIBUTION],
        api_url=api_url,
        url=outputs[OUTPUT_URL],
    )


def plan(dist: Path, api_url: str) -> list[SiteFile]:
    """Every object to upload, in upload order (assets, ``config.json``, ``index.html`` last).

    The whole build is read and checked here, before anything is uploaded.
    """
    index = dist / INDEX_FILE
    if not index.is_file():
        raise PublishError(
            f"the web dashboard is not built ({index} missing): run `{BUILD_COMMAND}` "
            "(npm ci && npm run build in web/) first"
        )
    assets: list[SiteFile] = []
    for path in sorted(dist.rglob("*")):
        if path.is_symlink():
            raise PublishError(f"{path}: a symlink in the build; refusing to publish it")
        if not path.is_file():
            continue
        key = path.relative_to(dist).as_posix()
        if key in {INDEX_FILE, CONFIG_FILE}:
            continue
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise PublishError(
                f"{path}: no content type is known for this file type; add its extension to "
                "CONTENT_TYPES in adapters/web_publish.py"
            )
        cache = IMMUTABLE if key.startswith("assets/") else SHORT
        assets.append(SiteFile(key, path.read_bytes(), content_type, cache))
    config = json.dumps({"apiBase": api_url}).encode()
    return [
        *assets,
        SiteFile(CONFIG_FILE, config, CONTENT_TYPES[".json"], REVALIDATE),
        SiteFile(INDEX_FILE, index.read_bytes(), CONTENT_TYPES[".html"], REVALIDATE),
    ]


def _existing_keys(s3: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def _build_of(s3: Any, bucket: str, key: str) -> str | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None  # deleted meanwhile
        raise
    build = head.get("Metadata", {}).get(BUILD_METADATA)
    return str(build) if build else None


def publish(dist: Path, target: SiteTarget, *, s3: Any, cloudfront: Any) -> Published:
    """Upload the build to ``target``, delete the builds before the previous one, invalidate the
    fixed names."""
    files = plan(dist, target.api_url)
    build = build_id(files[-1].body)
    step = f"list s3://{target.bucket}"
    try:
        before = _existing_keys(s3, target.bucket)
        previous = _build_of(s3, target.bucket, INDEX_FILE) if INDEX_FILE in before else None
        for file in files:
            step = f"upload s3://{target.bucket}/{file.key}"
            s3.put_object(
                Bucket=target.bucket,
                Key=file.key,
                Body=file.body,
                ContentType=file.content_type,
                CacheControl=file.cache_control,
                Metadata={BUILD_METADATA: build},
            )
        step = f"read the previous builds' files in s3://{target.bucket}"
        others = sorted(before - {f.key for f in files})
        kept: list[str] = []
        if previous is not None and previous != build:
            kept = [k for k in others if _build_of(s3, target.bucket, k) == previous]
        stale = [k for k in others if k not in kept]
        step = f"delete the older builds' files from s3://{target.bucket}"
        for start in range(0, len(stale), 1000):  # DeleteObjects takes up to 1000 keys
            batch = stale[start : start + 1000]
            answer = s3.delete_objects(
                Bucket=target.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise PublishError(
                    f"could not {step}: {len(answer['Errors'])} failed, e.g. "
                    f"{first.get('Key')}: {first.get('Message')}"
                )
        step = f"invalidate {' '.join(INVALIDATED_PATHS)} on distribution {target.distribution_id}"
        invalidation = cloudfront.create_invalidation(
            DistributionId=target.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(INVALIDATED_PATHS), "Items": list(INVALIDATED_PATHS)},
                "CallerReference": f"cst-web-publish-{uuid.uuid4()}",
            },
        )
    except (ClientError, BotoCoreError) as exc:
        raise PublishError(f"could not {step}: {exc} (publish again to complete)") from exc
    return Published(
        build=build,
        uploaded=tuple(f.key for f in files),
        kept=tuple(kept),
        deleted=tuple(stale),
        invalidation_id=str(invalidation["Invalidation"]["Id"]),
    )
