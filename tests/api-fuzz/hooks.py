"""Schemathesis hooks for scripts/api-fuzz.

- `application/gzip` bodies of `POST /api/v1/sites/{site}/deploys` are site archives:
  random bytes would be refused (rightly), so generate real `.tar.gz` files of a few
  regular files with distinct paths, which the server must accept.
- `application/x-tar` bodies of `POST /api/v1/deploys/{id}/files` are batches of blobs:
  uncompressed tars whose entries are named by the SHA-256 of their bytes (the server
  then refuses them only because they are not files of the deploy).
- An `Idempotency-Key` reused with another file list is refused (422, as the IETF
  Idempotency-Key draft says), and generated keys repeat: give every case its own key.
"""

import gzip
import hashlib
import io
import tarfile
import uuid

import schemathesis
from hypothesis import strategies as st

# Path segments the archive rules accept: no `.`/`..`, slashes, backslashes or controls.
SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)


def _tar(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _archive(files):
    return gzip.compress(_tar(files))


def _batch(blobs):
    return _tar({hashlib.sha256(data).hexdigest(): data for data in blobs})


# Paths unique ignoring case (case-colliding paths are refused) and none a prefix
# directory of another (a file cannot also be a folder).
FILES = st.dictionaries(
    keys=st.lists(SEGMENT, min_size=1, max_size=3).map("/".join),
    values=st.binary(max_size=2048),
    min_size=1,
    max_size=5,
).filter(
    lambda files: len({p.lower() for p in files}) == len(files)
    and not any(other.lower().startswith(p.lower() + "/") for p in files for other in files)
)

schemathesis.openapi.media_type("application/gzip", FILES.map(_archive))
schemathesis.openapi.media_type(
    "application/x-tar", st.lists(st.binary(max_size=2048), min_size=1, max_size=5).map(_batch)
)


@schemathesis.hook
def map_case(context, case):
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    return case
