"""Bad input gets one clear message and leaves nothing on disk."""
import os
import os.path as osp

import pytest

from possec.apis import UserError, test, train

from .conftest import ROOT, run_tool

DEMO_FCN = osp.join(ROOT, 'configs', 'demo',
                    'fcn_r18-d8_1xb8-160_synthetic-128x128.py')


def test_missing_config_cli(tmp_path):
    work_dir = tmp_path / 'wd'
    proc = run_tool(['tools/train.py', 'configs/nope.py', '--work-dir',
                     str(work_dir)])
    assert proc.returncode == 2
    assert "config file 'configs/nope.py' not found" in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not work_dir.exists()


def test_missing_data_root(tmp_path):
    work_dir = tmp_path / 'wd'
    with pytest.raises(UserError) as info:
        train(DEMO_FCN, work_dir=str(work_dir), cfg_options={
            'train_dataloader.dataset.generate': None,
            'train_dataloader.dataset.data_root': str(tmp_path / 'VOC2012')})
    message = str(info.value)
    assert f"data root '{tmp_path / 'VOC2012'}'" in message
    assert 'README § Data' in message
    assert 'configs/demo/parsenet_pos_synthetic.py' in message
    assert not work_dir.exists()


def test_unknown_type_names_closest(tmp_path):
    work_dir = tmp_path / 'wd'
    with pytest.raises(UserError) as info:
        train(DEMO_FCN, work_dir=str(work_dir),
              cfg_options={'model.decode_head.type': 'FCNHaed'})
    message = str(info.value)
    assert "unknown type 'FCNHaed'" in message
    assert 'FCNHead' in message.split('closest registered names:')[1]
    assert not work_dir.exists()


def test_unknown_transform_type(tmp_path):
    with pytest.raises(UserError, match="unknown type 'LoadAnotations'.*"
                       'LoadAnnotations'):
        train(DEMO_FCN, work_dir=str(tmp_path / 'wd'), cfg_options={
            'train_dataloader.dataset.pipeline.1.type': 'LoadAnotations'})


def test_missing_checkpoint(tmp_path):
    with pytest.raises(UserError, match="checkpoint '.*nope.pth' not found"):
        test(DEMO_FCN, str(tmp_path / 'nope.pth'),
             work_dir=str(tmp_path / 'wd'))
    assert not (tmp_path / 'wd').exists()


def test_resume_without_checkpoint(tmp_path):
    work_dir = tmp_path / 'wd'
    os.makedirs(work_dir)
    with pytest.raises(UserError, match='--resume: no checkpoint to resume '
                       'from in work dir'):
        train(DEMO_FCN, work_dir=str(work_dir), resume='auto')
    assert os.listdir(work_dir) == []
