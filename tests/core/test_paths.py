"""The app's one cache key for files (prediction cache, thumbnails, model key)."""

import os

from retina_desktop.core.paths import file_signature


def test_file_signature_changes_with_the_file_and_not_otherwise(tmp_path):
    p = tmp_path / "photo.png"
    p.write_bytes(b"12345")
    first = file_signature(p)
    assert file_signature(p) == first and len(first) == 16 and len(file_signature(p, digits=12)) == 12
    assert file_signature(p, digits=12) == first[:12]
    p.write_bytes(b"123456")  # another size
    second = file_signature(p)
    assert second != first
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same size, touched
    assert file_signature(p) != second
    # The label stands in for the path: the prediction cache keys by the image's workspace key, so it survives a move.
    moved = tmp_path / "elsewhere.png"
    os.replace(p, moved)
    assert file_signature(moved, label="img") == file_signature(moved, label="img") != file_signature(moved)
    # An unreadable file is keyed by its label alone.
    import hashlib

    assert file_signature(tmp_path / "gone.png", label="k") == hashlib.sha1(b"k").hexdigest()[:16]
