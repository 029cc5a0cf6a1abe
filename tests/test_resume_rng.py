"""ResumeRNGHook: a run resumed from a checkpoint trains what the
uninterrupted run trains (mmengine alone restores weights, optimizer and
data order, not the random generators)."""
import os.path as osp
import shutil

import torch

from possec.apis import train
from possec.engine.hooks import ResumeRNGHook

from .conftest import DEMO_FCN, tiny_overrides


def _weights(path):
    # the states are saved in plain types: torch's safe loader reads them
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert set(ckpt['rng_states']) == {'torch', 'cuda', 'numpy', 'python'}
    return ckpt['state_dict']


def test_a_resumed_run_trains_what_the_uninterrupted_run_trains(
        tiny_voc, tmp_path, monkeypatch):
    """Run A trains 4 iterations (FCN with dropout, random flips), saving
    and validating at 2 and 4; run B resumes A's iteration-2 checkpoint to
    4: the same weights, bit for bit (the validation at 2 comes after the
    save, and ValidationRNGHook, which possec.apis.train also adds, undoes
    what it draws). With the hook's restore switched off, B's
    weights differ (what mmengine's resume alone gives)."""
    opts = tiny_overrides(tiny_voc, str(tmp_path / 'a'), max_iters=4,
                          interval=2, input_size=(64, 64))
    train(DEMO_FCN, cfg_options=opts, summary=False)
    full = _weights(str(tmp_path / 'a' / 'iter_4.pth'))

    def resumed(name):
        work = tmp_path / name
        work.mkdir()
        shutil.copy(tmp_path / 'a' / 'iter_2.pth', work / 'iter_2.pth')
        train(DEMO_FCN, resume=str(work / 'iter_2.pth'),
              cfg_options=dict(opts, work_dir=str(work)), summary=False)
        return _weights(str(work / 'iter_4.pth'))

    again = resumed('b')
    assert full.keys() == again.keys()
    assert all(torch.equal(full[k], again[k]) for k in full)

    monkeypatch.setattr(ResumeRNGHook, 'before_train',
                        lambda self, runner: None)
    plain = resumed('c')
    assert any(not torch.equal(full[k], plain[k]) for k in full)
    assert osp.isfile(tmp_path / 'c' / 'iter_4.pth')


def test_nothing_is_set_without_a_resume_or_across_ranks(monkeypatch):
    """A run that did not resume (iteration 0), or a distributed one (the
    checkpoint holds rank 0's states only), keeps its loader as it is."""
    from possec.engine.hooks import resume_rng_hook

    class Loop:
        dataloader_iterator = iter(())

    class Runner:
        train_loop = Loop()
        iter = 0

    hook = ResumeRNGHook()
    original = Loop.dataloader_iterator
    for it, ranks in ((0, 1), (5, 2)):
        Runner.iter = it
        monkeypatch.setattr(resume_rng_hook, 'get_world_size',
                            lambda: ranks)
        hook.after_load_checkpoint(Runner, dict(rng_states={'torch': 0}))
        hook.before_train(Runner)
        assert Runner.train_loop.dataloader_iterator is original
    # one rank, resumed at 5: the loader is wrapped
    monkeypatch.setattr(resume_rng_hook, 'get_world_size', lambda: 1)
    hook.after_load_checkpoint(Runner, dict(rng_states={'torch': 0}))
    hook.before_train(Runner)
    assert Runner.train_loop.dataloader_iterator is not original
