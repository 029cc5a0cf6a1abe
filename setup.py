"""possec: absolute position information and global context in semantic
segmentation, built on MMSegmentation 1.x."""
import os.path as osp

from setuptools import find_packages, setup


def get_version():
    namespace = {}
    with open(osp.join(osp.dirname(__file__), 'possec', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='possec',
    version=get_version(),
    description='Does the absolute position a CNN encodes help or hurt '
    'semantic segmentation? ParseNet, PosENet and padding variants for '
    'MMSegmentation 1.x',
    long_description=open('README.md').read() if osp.exists('README.md')
    else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['possec', 'possec.*']),
    python_requires='>=3.10',
    install_requires=[
        # torch is installed first by `make install` (the CPU wheel); any
        # build that mmcv 2.1.0 compiles against works.
        'torch>=2.0',
        # mmseg 1.2.2 asserts 2.0.0rc4 <= mmcv < 2.2.0 and imports mmcv.ops,
        # so this must be the full mmcv (built from source on torch > 2.1).
        'mmcv>=2.1.0,<2.2.0',
        'mmengine>=0.10.0,<0.11.0',
        'mmsegmentation==1.2.2',
        # mmseg.utils imports these unconditionally without declaring them.
        'ftfy',
        'regex',
        'opencv-python',
        'numpy',
        'scipy',
        'matplotlib',
        # mmcv's setup.py and mmengine's `mmseg::` config resolution import
        # pkg_resources (removed in setuptools 82); torch 2.13 wants >= 77.
        'setuptools>=77,<82',
    ],
    extras_require={
        'tests': ['pytest>=7'],
    },
    zip_safe=False,
)
