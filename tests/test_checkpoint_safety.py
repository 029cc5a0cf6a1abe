"""Checkpoints load with weights_only=True and possec's allowlist: a payload
pickle never runs through tools/test.py, resume or load_from; possec's own
checkpoints need no allowlist (torch.load and mmseg's init_model read them)
and resume restores their message hub; older checkpoints load through the
allowlist; the opt-in is per file; importing possec changes nothing global;
a checkpoint evaluated under other model settings says so, and metrics.json
records where it came from."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

import possec  # noqa: F401
from possec.apis import train
from possec.errors import (CheckpointError, UntrustedCheckpointError,
                           WeightsMismatchError)
from possec.runtime import checkpoint as ckpt_mod
from possec.runtime import weights as weights_mod

from .conftest import DEMO_FCN, run_tool, tiny_overrides


class _Payload:
    """Unpickling calls os.system('touch MARKER')."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _evil(tmp_path):
    marker = tmp_path / 'PWNED'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)},
                'meta': {'x': _Payload(marker)}}, path)
    return path, marker


def _opts(tiny_voc, work_dir):
    return tiny_overrides(tiny_voc, work_dir, max_iters=2, interval=2,
                          input_size=(64, 64))


def test_payload_never_runs_through_test_tool(tiny_voc, tmp_path):
    path, marker = _evil(tmp_path)
    proc = run_tool(['tools/test.py', DEMO_FCN, path],
                    cfg_options=_opts(tiny_voc, str(tmp_path / 'wd')))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert not marker.exists()
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: checkpoint '{path}' was not loaded: it "
                           'holds the global posix.system')
    assert '--trust-checkpoint' in last
    assert 'Traceback' not in proc.stderr


@pytest.mark.parametrize('how', ['resume', 'load_from'])
def test_payload_never_runs_through_training(tiny_voc, tmp_path, how):
    path, marker = _evil(tmp_path)
    opts = _opts(tiny_voc, str(tmp_path / 'wd'))
    kwargs = dict(resume=path) if how == 'resume' else {}
    if how == 'load_from':
        opts['load_from'] = path
    with pytest.raises(UntrustedCheckpointError) as info:
        train(DEMO_FCN, cfg_options=opts, **kwargs)
    assert not marker.exists()
    message = str(info.value)
    assert 'holds the global posix.system' in message
    assert '--trust-checkpoint' in message
    assert '\n' not in message


def test_trust_is_per_file(tmp_path):
    path, marker = _evil(tmp_path)
    (tmp_path / 'x').mkdir()
    other, other_marker = _evil(tmp_path / 'x')
    ckpt_mod.trust(path)
    try:
        ckpt_mod.load_local_checkpoint(path)
        assert marker.exists()  # the opt-in does load the trusted file
        with pytest.raises(UntrustedCheckpointError):
            ckpt_mod.load_local_checkpoint(other)
        assert not other_marker.exists()
    finally:
        ckpt_mod._TRUSTED.clear()


def test_import_changes_nothing_global():
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
    assert CheckpointLoader._get_checkpoint_loader('/x/y.pth') is \
        load_from_local
    def ours():
        allowed = set(map(id, (g[0] if isinstance(g, tuple) else g
                               for g in ckpt_mod.allowed_globals())))
        return [g for g in torch.serialization.get_safe_globals()
                if id(g[0] if isinstance(g, tuple) else g) in allowed]

    assert ours() == []
    with weights_mod.checkpoint_loading():
        assert CheckpointLoader._get_checkpoint_loader('/x/y.pth') is not \
            load_from_local
        from mmengine.runner.checkpoint import load_from_http
        assert CheckpointLoader._get_checkpoint_loader('https://a/b.pth') \
            is load_from_http
    assert CheckpointLoader._get_checkpoint_loader('/x/y.pth') is \
        load_from_local
    assert ours() == []


#: the run's overrides: the padding-aware backbone with zero padding (the
#: same weights as mmseg's ResNetV1c), so that a test can change the mode
ZEROS = {'model.backbone.type': 'PadResNetV1c',
         'model.backbone.padding_mode': 'zeros'}


@pytest.fixture(scope='module')
def trained(tiny_voc, tmp_path_factory):
    """A real 2-iteration run of the FCN demo (zero padding set by
    --cfg-options): its checkpoint and its runner."""
    work_dir = str(tmp_path_factory.mktemp('real'))
    runner = train(DEMO_FCN, cfg_options=dict(_opts(tiny_voc, work_dir),
                                              **ZEROS))
    return osp.join(work_dir, 'iter_2.pth'), runner


@pytest.fixture(scope='module')
def real_checkpoint(trained):
    """The checkpoint of :func:`trained`."""
    return trained[0]


@pytest.fixture(scope='module')
def old_checkpoint(real_checkpoint, tmp_path_factory):
    """The same checkpoint as mmengine wrote it before possec wrote plain
    types: the message hub pickled as HistoryBuffer objects."""
    path = str(tmp_path_factory.mktemp('old') / 'iter_2.pth')
    torch.save(ckpt_mod.load_local_checkpoint(real_checkpoint), path)
    return path


def test_own_checkpoint_needs_no_allowlist(trained):
    path, runner = trained
    # torch's own safe default reads it: nothing outside torch's types
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    plain = torch.load(path)
    full = torch.load(path, weights_only=False)
    assert plain['state_dict'].keys() == full['state_dict'].keys()
    for key, value in full['state_dict'].items():
        assert torch.equal(plain['state_dict'][key], value)
    # possec's loader gives back the message hub the run saved: compared
    # with the live hub of the run (no training step came after the save)
    hub = ckpt_mod.load_local_checkpoint(path)['message_hub']['log_scalars']
    live = runner.message_hub.log_scalars
    train_keys = [k for k in hub if k.startswith('train/')]
    assert 'train/loss' in train_keys
    for key in train_keys:
        assert type(hub[key]) is type(live[key])
        for attr in ('_log_history', '_count_history'):
            saved, now = getattr(hub[key], attr), getattr(live[key], attr)
            assert saved.dtype == now.dtype
            np.testing.assert_array_equal(saved, now)
        assert hub[key].max_length == live[key].max_length
        assert hub[key].mean(2) == live[key].mean(2)


def test_init_model_reads_own_checkpoint(real_checkpoint):
    """mmseg's own API after ``import possec``: no flag, no trust."""
    from mmseg.apis import init_model
    model = init_model(DEMO_FCN, real_checkpoint, device='cpu')
    saved = torch.load(real_checkpoint, weights_only=False)
    for key, value in saved['state_dict'].items():
        assert torch.equal(model.state_dict()[key], value)
    assert model.dataset_meta['classes'] == \
        saved['meta']['dataset_meta']['classes']


def test_resume_from_own_checkpoint(trained, tiny_voc, tmp_path):
    path, first = trained
    opts = dict(_opts(tiny_voc, str(tmp_path / 'wd')), **ZEROS)
    opts.update({'train_cfg.max_iters': 4, 'param_scheduler.0.end': 4})
    runner = train(DEMO_FCN, resume=path, cfg_options=opts)
    assert runner.iter == 4
    # the resumed hub continues the first run's loss history
    before = first.message_hub.log_scalars['train/loss']._log_history
    after = runner.message_hub.log_scalars['train/loss']._log_history
    assert len(before) == 2 and len(after) == 4
    np.testing.assert_array_equal(after[:2], before)


def test_old_checkpoint_loads_through_allowlist(old_checkpoint):
    found = set(torch.serialization.get_unsafe_globals_in_checkpoint(
        old_checkpoint))
    # what an mmengine checkpoint pickles (besides torch's own types)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in found
    assert found <= ckpt_mod._allowed_names()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(old_checkpoint)  # torch's default refuses it
    loaded = ckpt_mod.load_local_checkpoint(old_checkpoint)
    hub = loaded['message_hub']['log_scalars']
    assert all(type(v).__name__ == 'HistoryBuffer' for v in hub.values())


class _Gadget:
    """Unpickles as getattr(HistoryBuffer.__init__, '__globals__'): the
    first step from an admitted class to eval."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return getattr, (HistoryBuffer.__init__, '__globals__')


def test_getattr_gadget_is_refused(tmp_path, old_checkpoint):
    # an old checkpoint needs getattr(HistoryBuffer, 'mean') and loads ...
    assert 'builtins.getattr' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(old_checkpoint)
    # ... but getattr is not admitted as such
    path = str(tmp_path / 'gadget.pth')
    torch.save({'x': _Gadget()}, path)
    with pytest.raises(UntrustedCheckpointError,
                       match=r"it holds the global builtins.getattr\("
                       r"HistoryBuffer, '__init__'\), which"):
        ckpt_mod.load_local_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError):
        ckpt_mod.history_buffer_method(dict, 'get')


def test_corrupt_and_truncated_checkpoints(real_checkpoint, tmp_path):
    truncated = str(tmp_path / 'truncated.pth')
    with open(real_checkpoint, 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    garbage = str(tmp_path / 'garbage.pth')
    with open(garbage, 'wb') as f:
        f.write(b'not a checkpoint at all' * 10)
    for path in (truncated, garbage):
        with pytest.raises(CheckpointError) as info:
            ckpt_mod.load_local_checkpoint(path)
        message = str(info.value)
        assert message.startswith(f'checkpoint {path!r} cannot be read (')
        assert 'truncated or not a checkpoint' in message
        assert '\n' not in message


def test_weights_of_another_model_are_refused(real_checkpoint):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(WeightsMismatchError) as info:
        weights_mod.load_model_checkpoint(model, real_checkpoint)
    message = str(info.value)
    assert 'does not fit the model (2 weights): 2 missing from it ' \
        '(0.weight, 0.bias)' in message
    assert 'unexpected in it (backbone.' in message
    assert '--partial-load' in message


def test_payload_never_runs_through_an_analysis_tool(tmp_path,
                                                     real_checkpoint):
    """The visual tools load through possec.analysis.common.models
    .load_segmentor: the own checkpoint loads with no flag, a payload is
    refused."""
    from possec.analysis.common.models import load_segmentor
    model = load_segmentor(DEMO_FCN, real_checkpoint)
    saved = torch.load(real_checkpoint, weights_only=False)['state_dict']
    assert torch.equal(model.state_dict()['decode_head.conv_seg.weight'],
                       saved['decode_head.conv_seg.weight'])
    path, marker = _evil(tmp_path)
    with pytest.raises(UntrustedCheckpointError,
                       match='holds the global posix.system'):
        load_segmentor(DEMO_FCN, path)
    assert not marker.exists()


def test_analysis_cli_trust_is_explicit_and_per_file(tmp_path):
    """An analysis CLI refuses a payload by default; --trust-checkpoint
    trusts exactly the file given with --checkpoint."""
    from possec.analysis.common.cli import common_kwargs, tool_parser
    path, marker = _evil(tmp_path)
    parser = tool_parser('test', out_dir=str(tmp_path / 'out'))
    common_kwargs(parser.parse_args([DEMO_FCN, '--checkpoint', path]))
    assert not ckpt_mod.is_trusted(path)
    other = str(tmp_path / 'other.pth')
    try:
        common_kwargs(parser.parse_args(
            [DEMO_FCN, '--checkpoint', path, '--trust-checkpoint']))
        assert ckpt_mod.is_trusted(path)
        assert not ckpt_mod.is_trusted(other)
    finally:
        ckpt_mod._TRUSTED.discard(ckpt_mod._key(path))
    assert not marker.exists()


def test_other_padding_is_named_and_recorded(real_checkpoint, tiny_voc,
                                             tmp_path, capsys):
    """Evaluating the zero-padded checkpoint under circular padding runs,
    prints one line for the difference and records it in metrics.json."""
    import hashlib
    import json

    import possec
    from possec.apis import test
    opts = dict(_opts(tiny_voc, str(tmp_path / 'wd')), **ZEROS)
    opts['model.backbone.padding_mode'] = 'circular'
    out = str(tmp_path / 'out')
    test(DEMO_FCN, real_checkpoint, out=out, cfg_options=opts)
    printed = capsys.readouterr()
    lines = [line for line in (printed.out + printed.err).splitlines()
             if 'note: model.' in line]
    assert len(lines) == 1, lines
    assert lines[0].endswith(
        "note: model.backbone.padding_mode is 'circular' in this run but "
        "was 'zeros' when iter_2.pth was trained (allowed; the result "
        "describes the trained weights under this setting)")
    with open(osp.join(out, 'metrics.json')) as f:
        record = json.load(f)['provenance']
    with open(real_checkpoint, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert record == dict(
        config=DEMO_FCN, overrides=json.loads(json.dumps(opts)),
        checkpoint=osp.abspath(real_checkpoint),
        checkpoint_sha256=digest[:12],
        model_differences=[dict(key='model.backbone.padding_mode',
                                checkpoint='zeros', config='circular')],
        possec_version=possec.__version__)


def test_same_settings_print_nothing(real_checkpoint, tiny_voc, tmp_path,
                                     capsys):
    from possec.analysis.common.models import load_segmentor
    model = load_segmentor(DEMO_FCN, real_checkpoint, cfg_options=ZEROS)
    assert model.model_differences == []
    assert 'note: ' not in capsys.readouterr().err
    # the analysis tools name a difference as tools/test.py does
    model = load_segmentor(DEMO_FCN, real_checkpoint, cfg_options=dict(
        ZEROS, **{'model.backbone.padding_mode': 'reflect'}))
    assert model.model_differences == [dict(
        key='model.backbone.padding_mode', checkpoint='zeros',
        config='reflect')]
    assert "note: model.backbone.padding_mode is 'reflect'" in \
        capsys.readouterr().err
