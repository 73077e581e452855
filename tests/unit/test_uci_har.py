import hashlib

import numpy as np
import pytest

from tests.unit.uci_layout import FileServer, write_layout, zip_layout
from tinyhil.models.datasets import load_dataset, uci_har, uci_har_cli
from tinyhil.models.errors import DatasetError


@pytest.fixture
def layout(tmp_path):
    return write_layout(tmp_path / "src")


def test_reads_the_official_folder_layout(layout):
    w = uci_har.load(layout)
    assert w.x.shape == (18, 128, 9)
    assert w.official_train.sum() == 12
    assert sorted(np.unique(w.y)) == list(range(6))  # 1..6 on disk -> 0..5
    expected = np.loadtxt(layout / "train" / "Inertial Signals" / "total_acc_y_train.txt")
    assert np.allclose(w.x[:12, :, 7], expected)


@pytest.mark.parametrize("nested", [False, True])
def test_reads_the_zip_and_the_nested_archive_zip(layout, tmp_path, nested):
    z = zip_layout(layout, tmp_path / "uci.zip", nested=nested)
    assert np.array_equal(uci_har.load(z).x, uci_har.load(layout).x)


def test_parent_folder_works_and_both_splits_load(layout):
    ds = load_dataset("uci-har", "subjects", data_dir=layout.parent)
    assert len(ds.y_train) == 12 and len(ds.y_test) == 6 and not ds.generated
    ds = load_dataset("uci-har", "paper", data_dir=layout.parent)
    assert len(ds.y_test) == 6  # 25 % of 3 windows per class, rounded, x 6 classes


def test_missing_file_is_named_with_the_fix(layout):
    (layout / "test" / "Inertial Signals" / "body_gyro_z_test.txt").unlink()
    with pytest.raises(
        DatasetError, match=r"missing .*body_gyro_z_test.txt.*python -m tinyhil.models.datasets.uci_har_cli download"
    ):
        uci_har.load(layout)


def test_wrong_shape_is_named(layout):
    f = layout / "train" / "Inertial Signals" / "body_acc_x_train.txt"
    np.savetxt(f, np.zeros((12, 100)))
    with pytest.raises(DatasetError, match="body_acc_x_train.txt has 100 columns per row, expected 128"):
        uci_har.load(layout)


def test_wrong_path_says_what_was_expected(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        uci_har.load(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="holds neither 'UCI HAR Dataset/'"):
        uci_har.load(tmp_path)
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable zip"):
        uci_har.load(tmp_path / "x.zip")


def test_download_from_loopback_verifies_and_unpacks(layout, tmp_path):
    payload = zip_layout(layout, tmp_path / "served.zip", nested=True).read_bytes()
    dest = tmp_path / "cache"
    with FileServer(payload) as srv:
        folder = uci_har.download(dest, srv.url, sha256=hashlib.sha256(payload).hexdigest(), backoff_s=0)
    assert folder == dest / "UCI HAR Dataset"
    assert (folder / "train" / "y_train.txt").exists()
    assert uci_har.load(dest).x.shape == (18, 128, 9)


def test_download_resumes_a_broken_transfer(layout, tmp_path):
    payload = zip_layout(layout, tmp_path / "served.zip").read_bytes()
    with FileServer(payload, cut_first=1, cut_at=len(payload) // 3) as srv:
        uci_har.download(tmp_path / "cache", srv.url, backoff_s=0)
    assert srv.requests[0] is None and srv.requests[1] == f"bytes={len(payload) // 3}-"
    assert (tmp_path / "cache" / "uci-har.zip").read_bytes() == payload


def test_download_restarts_when_the_server_ignores_ranges(layout, tmp_path):
    payload = zip_layout(layout, tmp_path / "served.zip").read_bytes()
    with FileServer(payload, cut_first=1, cut_at=1000, ranges=False) as srv:
        uci_har.download(tmp_path / "cache", srv.url, backoff_s=0)
    assert (tmp_path / "cache" / "uci-har.zip").read_bytes() == payload


def test_download_gives_up_clearly_and_keeps_the_partial_file(layout, tmp_path):
    payload = zip_layout(layout, tmp_path / "served.zip").read_bytes()
    with FileServer(payload, cut_first=99, cut_at=0) as srv:
        with pytest.raises(DatasetError, match="after 2 attempts.*next call resumes"):
            uci_har.download(tmp_path / "cache", srv.url, retries=2, backoff_s=0)


def test_checksum_mismatch_is_refused(layout, tmp_path):
    payload = zip_layout(layout, tmp_path / "served.zip").read_bytes()
    with FileServer(payload) as srv, pytest.raises(DatasetError, match="expected 00"):
        uci_har.download(tmp_path / "cache", srv.url, sha256="00" * 32, backoff_s=0)
    assert (tmp_path / "cache" / "uci-har.zip.bad").exists()


def test_command_line(layout, tmp_path, capsys):
    payload = zip_layout(layout, tmp_path / "served.zip").read_bytes()
    with FileServer(payload) as srv:
        assert uci_har_cli.main(["download", "--dest", str(tmp_path / "c"), "--url", srv.url]) == 0
    assert uci_har_cli.main(["check", str(tmp_path / "c")]) == 0
    assert "18 windows" in capsys.readouterr().out
    assert uci_har_cli.main(["check", str(tmp_path / "missing")]) == 2


def test_a_damaged_member_of_the_zip_is_named_with_the_fix(layout, tmp_path):
    import zipfile

    z = zip_layout(layout, tmp_path / "uci.zip")
    with zipfile.ZipFile(z) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("body_acc_x_train.txt"))
    data = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF  # inside the member's data: its CRC no longer matches
    z.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"body_acc_x_train.txt is damaged .*download it again"):
        uci_har.load(z)
