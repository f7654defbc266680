"""Dataset manifests: one TOML file per dataset describes where it comes from and how to read it.

A manifest is the single place that knows a dataset's Kaggle handle, folder layout, classes,
sizes, preprocessing and split rule, so every loader, notebook and test reads a dataset the
same way (the torchxrayvision / MONAI idea of one loader signature for every dataset).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import resources
from pathlib import Path

MANIFEST_DIR = Path(str(resources.files("mgm_tf.data_manifests")))  # data_manifests/ at the top of the repository
PAPER_DATASETS = ("pneumonia_xray", "diabetic_retinopathy", "brain_tumor_mri", "skin_cancer", "leukemia")


@dataclasses.dataclass(frozen=True)
class ClassSpec:
    """One class: the folder names that hold it, or the CSV label values that mean it."""

    name: str
    folders: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    expected: int = 0  # 0 = unknown, reported but not checked


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """Use the download's own test/val folders ("folders") or a seeded patient-level split."""

    rule: str = "seeded"
    test: tuple[str, ...] = ("test",)
    val: tuple[str, ...] = ("val",)
    test_fraction: float = 0.2
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class LabelsCSV:
    """Datasets labelled by a CSV file instead of class folders (EyePACS trainLabels.csv)."""

    csv: str
    file_column: str
    label_column: str
    extension: str = ""


@dataclasses.dataclass(frozen=True)
class DatasetManifest:
    name: str
    title: str
    modality: str
    channels: int
    citation: str
    licence: str
    classes: tuple[ClassSpec, ...]
    split: SplitSpec
    source: dict
    native_size: str = ""
    working_size: int = 256
    gan_size: int = 64
    sr_size: int = 256
    preprocessing: tuple[str, ...] = ()
    patient_pattern: str = ""
    expected_total: int = 0
    labels: LabelsCSV | None = None
    path: str = ""  # the TOML file it was read from

    @property
    def class_names(self) -> list[str]:
        return [spec.name for spec in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def kaggle_handle(self) -> str:
        return self.source.get("kaggle", "")

    def patient_id(self, file_name: str) -> str:
        """The patient a file belongs to, or the file name itself when names carry no patient."""
        if self.patient_pattern:
            match = re.search(self.patient_pattern, file_name)
            if match:
                return match.group(1)
        return Path(file_name).stem

    def with_handle(self, handle: str) -> "DatasetManifest":
        """A copy pointing at another Kaggle handle or version (a user override)."""
        check_handle(handle)
        return dataclasses.replace(self, source={**self.source, "kaggle": handle})

    def summary(self) -> str:
        lines = [f"{self.name}: {self.title}",
                 f"  modality {self.modality}, {self.channels} channel(s), working size {self.working_size}, "
                 f"GAN {self.gan_size}, SR {self.sr_size}",
                 f"  source {self.kaggle_handle or self.source.get('path') or self.source.get('kaggle_competition')}",
                 f"  classes {', '.join(self.class_names)}; split {self.split.rule}; "
                 f"preprocessing {', '.join(self.preprocessing) or 'none'}"]
        return "\n".join(lines)


def check_handle(handle: str) -> None:
    """'owner/dataset/versions/N' (a pinned version: reproducible, served offline from the
    kagglehub cache) or 'owner/dataset' (the latest version; the one downloaded is recorded)."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+(/versions/\d+)?", handle):
        raise ValueError(f"Kaggle handle {handle!r} must be 'owner/dataset' (latest version) or "
                         "'owner/dataset/versions/N' (a pinned version)")


def is_pinned(handle: str) -> bool:
    return "/versions/" in handle


def _class_spec(entry: dict, path: Path) -> ClassSpec:
    if "name" not in entry:
        raise ValueError(f"{path}: every [[classes]] entry needs a name, got {entry}")
    folders = tuple(entry.get("folders", ()))
    values = tuple(str(value) for value in entry.get("values", ()))
    if not folders and not values:
        raise ValueError(f"{path}: class {entry['name']!r} lists neither folders nor CSV values")
    return ClassSpec(entry["name"], folders, values, int(entry.get("expected", 0)))


def parse_manifest(data: dict, path: Path) -> DatasetManifest:
    """Validate a manifest's TOML content; errors name the file and the field at fault."""
    required = ("name", "title", "modality", "channels", "citation", "licence", "classes", "source")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{path}: missing field(s) {', '.join(missing)}")
    if data["channels"] not in (1, 3):
        raise ValueError(f"{path}: channels must be 1 or 3, got {data['channels']!r}")
    classes = tuple(_class_spec(entry, path) for entry in data["classes"])
    if len(classes) < 1 or len({spec.name for spec in classes}) != len(classes):
        raise ValueError(f"{path}: class names must be present and unique, got {[c.name for c in classes]}")
    split_data = dict(data.get("split", {}))
    split = SplitSpec(rule=split_data.get("rule", "seeded"), test=tuple(split_data.get("test", ("test",))),
                      val=tuple(split_data.get("val", ("val",))),
                      test_fraction=float(split_data.get("test_fraction", 0.2)), seed=int(split_data.get("seed", 0)))
    if split.rule not in ("folders", "seeded"):
        raise ValueError(f"{path}: split.rule must be 'folders' or 'seeded', got {split.rule!r}")
    if not 0.0 < split.test_fraction < 1.0:
        raise ValueError(f"{path}: split.test_fraction must be in (0, 1), got {split.test_fraction}")
    source = dict(data["source"])
    if "kaggle" in source:
        check_handle(source["kaggle"])
    labels = LabelsCSV(**data["labels"]) if "labels" in data else None
    return DatasetManifest(
        name=data["name"], title=data["title"], modality=data["modality"], channels=int(data["channels"]),
        citation=data["citation"], licence=data["licence"], classes=classes, split=split, source=source,
        native_size=str(data.get("native_size", "")), working_size=int(data.get("working_size", 256)),
        gan_size=int(data.get("gan_size", 64)), sr_size=int(data.get("sr_size", 256)),
        preprocessing=tuple(data.get("preprocessing", ())), patient_pattern=data.get("patient_pattern", ""),
        expected_total=int(data.get("expected_total", 0)), labels=labels, path=str(path))


def read_manifest(path: str | Path) -> DatasetManifest:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from error
    return parse_manifest(data, path)


def available_manifests() -> list[str]:
    return sorted(path.stem for path in MANIFEST_DIR.glob("*.toml"))


def load_manifest(name: str) -> DatasetManifest:
    """Load a bundled manifest by name, or any manifest TOML by path."""
    if name.endswith(".toml"):
        return read_manifest(name)
    path = MANIFEST_DIR / f"{name}.toml"
    if not path.exists():
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(available_manifests())} "
                         "(or pass --data-dir PATH for a folder with one subfolder per class)")
    return read_manifest(path)


def package_path(relative: str) -> Path:
    """Resolve 'package:demo_data' style sources to a folder inside the installed package."""
    return Path(str(resources.files("mgm_tf").joinpath(relative)))


SPLIT_NAMES = ("train", "val", "test")
