"""In-tree PEP 517 build backend for test sdists, standard library only.

Everything it needs is in ``backend.json`` next to this file, written by the
Rust ``Sdist`` builder:

- ``name``, ``version``, ``dist``: display name, version, wheel file name stem;
- ``metadata``: the METADATA text of the built distribution (it may differ from
  PKG-INFO: dynamic fields are only known here);
- ``files``: package files, relative to the sdist root, copied into the wheel;
- ``entry_points``: the ``entry_points.txt`` text, or empty;
- ``imports``: modules every hook imports (the ``[build-system] requires``), so a
  hook fails unless the frontend installed them;
- ``hook_requires``: returned by ``get_requires_for_build_wheel``;
- ``hook_imports``: modules imported by the metadata and wheel hooks.

If ``TEST_BACKEND_LOG`` is set, every hook appends ``<hook> <name> <version>`` to
that file, so a test can count builds; with ``TEST_BACKEND_LOG_IMPORTS=1`` the
module appends ``imported <pid>`` when it is imported. A hook fails when a hook of
another sdist ran in the same process before (frontends must not share one). With
``TEST_BACKEND_SPAWN=1`` each hook first runs a child by multiprocessing's spawn method.

``backend.json`` is read from the working directory (the sdist root, where PEP 517
runs hooks), else from beside this file: the backend also works installed.
"""

import base64
import hashlib
import importlib
import io
import json
import os
import tarfile
import zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_DATE = (1980, 1, 1, 0, 0, 0)


_BUILT_HERE = set()

def _spawned():
    """Whether this interpreter is a child that multiprocessing spawned for a hook."""
    import sys

    return "__mp_main__" in sys.modules


if os.environ.get("TEST_BACKEND_LOG") and os.environ.get("TEST_BACKEND_LOG_IMPORTS") and not _spawned():
    with open(os.environ["TEST_BACKEND_LOG"], "a", encoding="utf-8") as _f:
        _f.write("imported %d\n" % os.getpid())


def _config():
    path = os.path.join(os.getcwd(), "backend.json")
    if not os.path.exists(path):
        path = os.path.join(_HERE, "backend.json")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    me = (cfg["name"], cfg["version"])
    others = _BUILT_HERE - {me}
    if others:
        raise RuntimeError("this process ran the hooks of %r before %r" % (sorted(others), me))
    _BUILT_HERE.add(me)
    return cfg


def _log(hook, cfg):
    path = os.environ.get("TEST_BACKEND_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            pid = " %d" % os.getpid() if os.environ.get("TEST_BACKEND_LOG_PID") else ""
            f.write("%s %s %s%s\n" % (hook, cfg["name"], cfg["version"], pid))


def _import_all(cfg, key):
    for module in cfg.get(key, []):
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise RuntimeError(
                "building %s %s needs the module %r: %s"
                % (cfg["name"], cfg["version"], module, e)
            ) from e


def _noop():
    pass


def _start(hook, with_hook_imports):
    cfg = _config()
    if os.environ.get("TEST_BACKEND_SPAWN"):
        # A backend that runs work in a spawned interpreter (as parallel compiles may), which
        # imports the frontend's main script again.
        import multiprocessing

        child = multiprocessing.get_context("spawn").Process(target=_noop)
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError("a spawned process exited with %r" % child.exitcode)
    _log(hook, cfg)
    _import_all(cfg, "imports")
    if with_hook_imports:
        _import_all(cfg, "hook_imports")
    return cfg


def _dist_info(cfg):
    return cfg["dist"] + "-" + cfg["version"] + ".dist-info"


def get_requires_for_build_wheel(config_settings=None):
    return list(_start("get_requires_for_build_wheel", False).get("hook_requires", []))


def get_requires_for_build_sdist(config_settings=None):
    _start("get_requires_for_build_sdist", False)
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    cfg = _start("prepare_metadata_for_build_wheel", True)
    dist_info = _dist_info(cfg)
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    with open(os.path.join(metadata_directory, dist_info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(cfg["metadata"])
    return dist_info


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (path, digest, len(data))


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    cfg = _start("build_wheel", True)
    dist_info = _dist_info(cfg)
    entries = []
    for rel in cfg["files"]:
        with open(os.path.join(_HERE, rel), "rb") as f:
            entries.append((rel, f.read()))
    entries.append((dist_info + "/METADATA", cfg["metadata"].encode()))
    wheel = "Wheel-Version: 1.0\nGenerator: test-support-backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries.append((dist_info + "/WHEEL", wheel.encode()))
    if cfg.get("entry_points"):
        entries.append((dist_info + "/entry_points.txt", cfg["entry_points"].encode()))
    record = "".join(_record_line(p, d) for p, d in entries) + dist_info + "/RECORD,,\n"
    entries.append((dist_info + "/RECORD", record.encode()))
    name = "%s-%s-py3-none-any.whl" % (cfg["dist"], cfg["version"])
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return name


def build_sdist(sdist_directory, config_settings=None):
    cfg = _start("build_sdist", False)
    stem = "%s-%s" % (cfg["dist"], cfg["version"])
    name = stem + ".tar.gz"
    paths = []
    for root, dirs, files in os.walk(_HERE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for file in sorted(files):
            paths.append(os.path.relpath(os.path.join(root, file), _HERE))
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tf:
        for rel in paths:
            with open(os.path.join(_HERE, rel), "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(stem + "/" + rel.replace(os.sep, "/"))
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return name


class _Hooks:
    """The hooks as an object of this module (``build-backend = "testback:legacy"``), as
    setuptools serves ``setuptools.build_meta:__legacy__``."""

    get_requires_for_build_wheel = staticmethod(get_requires_for_build_wheel)
    get_requires_for_build_sdist = staticmethod(get_requires_for_build_sdist)
    prepare_metadata_for_build_wheel = staticmethod(prepare_metadata_for_build_wheel)
    build_wheel = staticmethod(build_wheel)
    build_sdist = staticmethod(build_sdist)


legacy = _Hooks()
