"""The build maps the app into the wheel: top-level app.py, pages/ and sample_data/digits become
the package ``vendiscope_app``, so ``pip install vendiscope`` serves the app from any folder
(``vendiscope app``) on the bundled sample data. Everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
APP_FILES = ["app.py", "pages/*.py", "pages/*.js", "pages/*.css", "sample_data/README.md", "sample_data/*.py",
             "sample_data/digits/**/*"]


class BuildPyWithApp(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install serves the app from the checkout itself
        target = Path(self.build_lib) / "vendiscope_app"
        (target / "__init__.py").parent.mkdir(parents=True, exist_ok=True)
        (target / "__init__.py").write_text('"""The Vendiscope app (app.py, pages/, sample_data/), as a wheel '
                                            'installs it; served by `vendiscope app`."""\n')
        for pattern in APP_FILES:
            for path in sorted(ROOT.glob(pattern)):
                if path.is_file() and "__pycache__" not in path.parts:
                    dest = target / path.relative_to(ROOT)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildPyWithApp})
