"""Fold BatchNorm into the convolutions before testing."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class FuseConvBNHook(Hook):
    """Fold every BatchNorm that follows a conv into that conv's weights,
    once, before the test loop.

    ``before_test`` runs after the Runner has loaded ``load_from``, so the
    folded weights are the checkpoint's. The outputs are the model's up to
    float rounding; inference is faster. The folding is mmcv's
    :func:`mmcv.cnn.fuse_conv_bn`. ``tools/test.py --fuse-conv-bn`` adds
    this hook.
    """

    def before_test(self, runner) -> None:
        from mmcv.cnn import fuse_conv_bn
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        model.eval()
        fuse_conv_bn(model)
