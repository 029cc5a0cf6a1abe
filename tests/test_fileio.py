"""possec.fileio: atomic writes leave a complete file or nothing."""
import json
import os
import stat

import pytest

from possec.fileio import atomic_path, dump_json


def test_dump_json_roundtrip_and_permissions(tmp_path):
    path = tmp_path / 'out.json'
    dump_json({'a': 1.5}, str(path))
    assert json.loads(path.read_text()) == {'a': 1.5}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ['out.json']


def test_failure_leaves_target_untouched(tmp_path):
    path = tmp_path / 'keep.txt'
    path.write_text('old')
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            with open(tmp, 'w') as f:
                f.write('half')
            raise RuntimeError('killed')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['keep.txt']
