"""The package's layout, read from its source with ``ast``: every mmengine
Hook lives in ``possec/engine/hooks/``, and ``possec/runtime/`` (the stack
fixes) imports nothing from the layers above it."""
import ast
import os
import os.path as osp

from .conftest import ROOT

PACKAGE = osp.join(ROOT, 'possec')
HOOKS_DIR = osp.join(PACKAGE, 'engine', 'hooks')
EXPECTED_HOOKS = {'FuseConvBNHook', 'IterTimes', 'PositionEraserHook',
                  'RunSummaryHook', 'StudyProgressHook'}


def _modules(folder):
    """``(dotted module name, path, parsed tree)`` of every .py file under
    ``folder``."""
    for dirpath, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, ROOT)[:-len('.py')].split(os.sep)
            if rel[-1] == '__init__':
                rel = rel[:-1]
            with open(path, encoding='utf-8') as f:
                yield '.'.join(rel), path, ast.parse(f.read(), path)


def _base_name(node):
    """The last name of a base-class expression (``Hook`` for
    ``mmengine.hooks.Hook``), or None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _hooks_among(classes):
    """The hooks among ``classes`` (``(name, base names, where)`` triples):
    ``{name: [where, ...]}`` of every class derived from mmengine's ``Hook``
    directly, from an mmengine ``...Hook`` class, or from another class of
    ``classes`` that is a hook."""
    hooks = {}
    changed = True
    while changed:
        changed = False
        for name, bases, where in classes:
            if where in hooks.get(name, []):
                continue
            if any(b == 'Hook' or b.endswith('Hook') or b in hooks
                   for b in bases):
                hooks.setdefault(name, []).append(where)
                changed = True
    return hooks


def _classes(tree, where):
    return [(node.name, {_base_name(b) for b in node.bases} - {None}, where)
            for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _hook_classes():
    """``{class name: [paths]}`` of every Hook class in possec."""
    classes = []
    for _, path, tree in _modules(PACKAGE):
        classes.extend(_classes(tree, path))
    return _hooks_among(classes)


def test_hooks_live_in_engine_hooks_only():
    hooks = _hook_classes()
    inside = {name for name, paths in hooks.items()
              if all(p.startswith(HOOKS_DIR + os.sep) for p in paths)}
    assert EXPECTED_HOOKS <= inside, \
        f'expected the five hooks in possec/engine/hooks, found {inside}'
    outside = {name: [osp.relpath(p, ROOT) for p in paths
                      if not p.startswith(HOOKS_DIR + os.sep)]
               for name, paths in hooks.items()}
    assert not {k: v for k, v in outside.items() if v}


def test_hook_finder_sees_indirect_subclasses():
    """The ast rule catches a subclass of a hook whose own name does not
    end in Hook, and leaves other classes alone."""
    tree = ast.parse('import mmengine.hooks\n'
                     'class Timer(mmengine.hooks.Hook): pass\n'
                     'class Sub(Timer): pass\n'
                     'class Saver(CheckpointHook): pass\n'
                     'class Plain(object): pass\n'
                     'class Hooked: pass\n')
    assert set(_hooks_among(_classes(tree, 'x.py'))) == {
        'Timer', 'Sub', 'Saver'}


def test_registered_hooks_come_from_engine():
    """At run time too: every hook class possec registers in mmseg's HOOKS
    is defined in possec.engine.hooks, under an unchanged name."""
    import possec  # noqa: F401  (registers)
    from mmseg.registry import HOOKS
    ours = {name: cls.__module__ for name, cls in HOOKS.module_dict.items()
            if cls.__module__.startswith('possec')}
    assert EXPECTED_HOOKS <= set(ours)
    assert all(m.startswith('possec.engine.hooks.') for m in ours.values()), \
        ours


def _imported_modules(module, tree):
    """Absolute names of every module that ``tree`` (the source of
    ``module``) imports, at any depth (function-level imports included)."""
    is_package = osp.isfile(osp.join(ROOT, *module.split('.'),
                                     '__init__.py'))
    package = module if is_package else module.rsplit('.', 1)[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1]
                prefix = '.'.join(base)
                target = f'{prefix}.{node.module}' if node.module else prefix
            else:
                target = node.module
            names.append(target)
            names.extend(f'{target}.{alias.name}' for alias in node.names)
    return names


def _imports_under(folder):
    """``{path: imported module names}`` of every module under ``folder``."""
    return {osp.relpath(path, ROOT): _imported_modules(module, tree)
            for module, path, tree in _modules(folder)}


def test_relative_imports_resolved():
    tree = ast.parse('from ..models.layers import X\n'
                     'def f():\n    from . import quiet\n'
                     'import torch.nn\n')
    names = _imported_modules('possec.runtime.example', tree)
    assert {'possec.models.layers', 'possec.runtime', 'possec.runtime.quiet',
            'torch.nn'} <= set(names)


def test_runtime_imports_nothing_from_models_or_above():
    imports = _imports_under(osp.join(PACKAGE, 'runtime'))
    assert len(imports) > 3
    assert 'possec.fileio' in imports[osp.join('possec', 'runtime',
                                               'atomic_save.py')]
    banned = ('possec.models', 'possec.engine', 'possec.apis',
              'possec.analysis', 'possec.benchmarks')
    bad = {path: sorted({n for n in names if n.startswith(banned)})
           for path, names in imports.items()}
    assert not {k: v for k, v in bad.items() if v}
