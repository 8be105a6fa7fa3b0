"""The task registry (kdzoo/tasks.py): every adapter's descriptor found by name and by config
scope, clear errors, and the source-tree rules it makes possible: no code outside the adapters
and the registry compares task names, and kdzoo imports the adapters only at the top of a
non-core module."""
import ast
import importlib
import os

import pytest
import torch

from kdzoo import registry, tasks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every task name a config, a CSV or an adapter module has used.
TASK_NAMES = {'cls', 'seg', 'det', 'mmseg', 'mmdet'}
# kdzoo modules below the adapters (docs/architecture.md): they never import one.
CORE = ('kdzoo/losses/', 'kdzoo/connectors/', 'kdzoo/distiller.py', 'kdzoo/taps.py',
        'kdzoo/layout.py', 'kdzoo/finite.py', 'kdzoo/monitor.py')


@pytest.mark.parametrize('name', sorted(tasks.ADAPTERS))
def test_each_adapter_registers_its_descriptor(name):
    module, scope = tasks.ADAPTERS[name]
    task = tasks.get(name)
    assert task is importlib.import_module(module).TASK and task.name == name
    assert tasks.REGISTERED[name] is task
    if scope:
        assert tasks.of_config(dict(default_scope=scope)) is task
    else:
        for other in ('kdzoo', 'mmpretrain', None):
            assert tasks.of_config(dict(default_scope=other)) is task
    assert registry.MODELS.get(task.model_type) is task.distill_model
    assert task.metric and task.metric_scale > 0
    assert not tasks.is_distill_model(torch.nn.Linear(1, 1))


def test_unknown_name_lists_the_tasks():
    with pytest.raises(ValueError, match=r"unknown task 'mmseg'; the tasks are \['cls', 'det', "
                                         r"'seg'\]"):
        tasks.get('mmseg')


def test_adapter_that_cannot_be_imported_says_how_to_install(monkeypatch):
    monkeypatch.setitem(tasks.ADAPTERS, 'seg', ('kdzoo.adapters.no_such_adapter', 'mmseg'))
    monkeypatch.delitem(tasks.REGISTERED, 'seg', raising=False)
    expected = (r"the seg adapter \(kdzoo.adapters.no_such_adapter\) cannot be imported: .*the "
                r"kdzoo wheel's extra, `pip install 'kdzoo-VERSION-py3-none-any.whl\[seg\]'`, "
                r'then onedl-mmcv compiled with its C\+\+ ops \(docs/deploy.md\); in a checkout, '
                r'the pinned stack with `bash tools/install.sh`\.$')
    with pytest.raises(ModuleNotFoundError, match=expected):
        tasks.of_config(dict(default_scope='mmseg'))


def test_registered_task_found_by_name(monkeypatch):
    task = tasks.get('cls')
    other = tasks.TaskDescriptor(**dict(vars(task), name='other'))
    monkeypatch.setitem(tasks.REGISTERED, 'other', other)
    assert tasks.get('other') is other and 'other' in tasks.names()


def test_cls_stage_shapes_are_the_stage_readouts():
    cfg = dict(type='TimmClassifier', model_name='resnet10t', num_classes=5)
    shapes = tasks.get('cls').stage_shapes(cfg)
    model = tasks.get('cls').build(cfg).eval()
    with torch.no_grad():
        maps = model.readouts(torch.zeros(1, 3, 64, 64), list(tasks.STAGES))
    assert shapes == [tuple(maps[name].shape[1:]) for name in tasks.STAGES]
    assert shapes[0] == (64, 16, 16) and shapes[-1][1:] == (2, 2)


def test_seg_stage_shapes_are_the_backbone_outputs():
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(REPO, 'configs', 'seg', 'quickstart_student.py')).model
    shapes = tasks.get('seg').stage_shapes(cfg)
    model = tasks.get('seg').build(cfg).eval()
    with torch.no_grad():
        stages = model.backbone(torch.zeros(1, 3, 64, 64))
    assert shapes == [tuple(x.shape[1:]) for x in stages] and len(shapes) == 4


# ------------------------------------------------------------------------ source-tree rules
def python_files(*folders):
    for folder in folders:
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for name in sorted(files):
                if name.endswith('.py'):
                    path = os.path.join(root, name)
                    yield os.path.relpath(path, REPO).replace(os.sep, '/'), path


def parse(path):
    with open(path, encoding='utf-8') as f:
        return ast.parse(f.read(), path)


def task_comparisons(tree):
    """Lines of comparisons (``==``, ``!=``, ``in``, ``not in``) with a task name literal, alone
    or in a tuple / list / set."""
    def names_in(node):
        elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return {e.value for e in elements if isinstance(e, ast.Constant)} & TASK_NAMES
    return sorted({node.lineno for node in ast.walk(tree) if isinstance(node, ast.Compare)
            and any(names_in(side) for side in [node.left, *node.comparators])})


def adapter_imports(tree):
    """``(line, indented)`` of each import of ``kdzoo.adapters`` (or a module under it)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
        else:
            continue
        if any(m == 'kdzoo.adapters' or m.startswith('kdzoo.adapters.') for m in modules):
            out.append((node.lineno, node.col_offset > 0))
    return out


def test_no_task_name_comparison_outside_the_adapters_and_the_registry():
    found = {rel: lines for rel, path in python_files('kdzoo', 'tools')
             if rel != 'kdzoo/tasks.py'
             for lines in [task_comparisons(parse(path))] if lines}
    assert not found, f'task names compared (look the task up in kdzoo.tasks): {found}'


def test_kdzoo_imports_adapters_only_at_module_top_and_never_in_the_core():
    indented, core = {}, {}
    for rel, path in python_files('kdzoo'):
        for line, nested in adapter_imports(parse(path)):
            if nested:
                indented.setdefault(rel, []).append(line)
            if rel.startswith(CORE):
                core.setdefault(rel, []).append(line)
    assert not indented, f'function-level imports of kdzoo.adapters: {indented}'
    assert not core, f'core modules importing kdzoo.adapters: {core}'


def test_the_rules_catch_what_they_forbid():
    tree = ast.parse("def f(cfg):\n    from kdzoo.adapters.cls import model\n"
                     "    import kdzoo.adapters\n    return cfg.task in ('mmseg', 'x') or "
                     "cfg.task != 'det'\n")
    assert adapter_imports(tree) == [(2, True), (3, True)]
    assert task_comparisons(tree) == [4]
