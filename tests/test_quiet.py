"""possec.runtime.quiet: the stack's warnings silenced, the environment block
naming the real device, config and hook table kept off the console."""
import logging
import warnings

import torch

from possec.engine.hooks import RunSummaryHook
from possec.runtime.quiet import (ConsoleFilter, silence_stack_warnings,
                                  tidy_environment)

ENV = ('\n' + '-' * 60 + '\nSystem environment:\n    CUDA available: False\n'
       '\nRuntime environment:\n    cudnn_benchmark: True\n'
       "    dist_cfg: {'backend': 'nccl'}\n    seed: 0\n"
       '    Distributed launcher: none\n    Distributed training: False\n'
       '    GPU number: 1\n' + '-' * 60 + '\n')


def test_stack_warnings_silenced_and_others_kept():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        silence_stack_warnings()
        warnings.warn('pkg_resources is deprecated as an API. See ...',
                      UserWarning)
        warnings.warn('``build_loss`` would be deprecated soon, please use',
                      UserWarning)
        warnings.warn('Default ``avg_non_ignore`` is False, if you would',
                      UserWarning)
        warnings.warn('something else', UserWarning)
    assert [str(w.message) for w in seen] == ['something else']


def test_environment_names_the_device():
    text = tidy_environment(ENV)
    assert 'GPU number' not in text and '    processes: 1' in text
    device = 'cuda:' if torch.cuda.is_available() else 'cpu ('
    assert f'    device: {device}' in text
    assert "'nccl'}  -> backend in use: unused (a single process)" in text
    # everything else unchanged, in order
    kept = [ln for ln in ENV.split('\n') if 'GPU number' not in ln and
            'dist_cfg' not in ln]
    assert [ln for ln in text.split('\n') if ln in kept] == kept


def test_console_filter_keeps_config_for_the_file_only():
    f = ConsoleFilter()

    def record(msg):
        return logging.LogRecord('x', logging.INFO, __file__, 1, msg, None,
                                 None)

    assert not f.filter(record('Config:\nmodel = dict(...)'))
    assert not f.filter(record('Hooks will be executed in the following '
                               'order:\nbefore_run:'))
    env = record(ENV)
    # the block goes to the log file only (tidied); the console gets
    # environment_line() instead
    assert not f.filter(env) and 'processes: 1' in env.msg
    assert f.filter(record('Iter(train) [1/2] loss: 1.0'))
    # mmengine 0.10's own notices, as its logger prints them on every run
    for text in ('"FileClient" will be deprecated in future. Please use io '
                 'functions in https://mmengine.readthedocs.io/en/latest/'
                 'api/fileio.html#file-io',
                 '"HardDiskBackend" is the alias of "LocalBackend" and the '
                 'former will be deprecated in future.',
                 'The prefix is not set in metric class BorderIoUMetric.'):
        assert not f.filter(record(text))
    assert f.filter(record('The model and loaded state dict do not match '
                           'exactly'))


def test_summary_lists_metrics_and_files(tmp_path):
    import numpy as np
    from mmengine.config import Config

    class Runner:
        cfg = Config(dict(test_evaluator=dict(
            type='PerClassIoUMetric',
            results_file=str(tmp_path / 'out' / 'metrics.json'))))
        logger = logging.getLogger('possec-test-quiet')
        work_dir = str(tmp_path)

    hook = RunSummaryHook()
    hook.after_test_epoch(Runner, dict(aAcc=np.float32(97.49), mIoU=57.764,
                                       per_class=np.zeros(3)))
    text = hook.summary(Runner)
    assert text.startswith('==== possec: test finished')
    assert '  aAcc 97.49  mIoU 57.76\n' in text
    assert str(tmp_path / 'out' / 'metrics.{json,csv}') in text


def test_summary_names_the_checkpoint_resume_would_use(tmp_path):
    """A killed save leaves ``last_checkpoint`` naming a truncated file: the
    summary names the checkpoint ``--resume`` continues from (the newest
    complete one), not the file the marker names."""
    from mmengine.config import Config

    from possec.apis.checks import resolve_resume
    torch.save({'state_dict': {}}, tmp_path / 'iter_2.pth')
    (tmp_path / 'iter_4.pth').write_bytes(b'PK\x03\x04 cut short')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))

    class Runner:
        cfg = Config(dict())
        logger = logging.getLogger('possec-test-quiet')
        work_dir = str(tmp_path)
        iter = 4

    hook = RunSummaryHook()
    hook.after_train(Runner)
    text = hook.summary(Runner)
    resumed = resolve_resume('auto', str(tmp_path))
    assert resumed == str(tmp_path / 'iter_2.pth')
    assert f'checkpoint  {resumed}\n' in text
    assert 'iter_4.pth' not in text
