"""The datasets of the ``colab`` and ``paper`` profiles, as data: every downloadable file
(:class:`Resource`: URL, published hash or none, where its content goes, what must be there
afterwards, how to get it by hand) and which files make each dataset (:data:`DATASETS`).
:mod:`clipadapt.data.fetch.download` fetches them.

The image archives of General-10 (SoftCPT, chapter 7) are the files and MD5s that
torchvision's dataset classes download (a test keeps them equal), except UCF-101's middle
frames (CoOp's zip on Google Drive) and Stanford Cars, which has no public download any more
(its error says how to get it by hand). Where the publisher gives no hash (CLIP4Clip's
annotations, Frozen in Time's videos, CoOp's split files on Google Drive, FGVC-Aircraft's
archive), the content is checked instead: a split file must be JSON with CoOp's
``train``/``val``/``test`` keys, an archive must open and hold the members it should.
"""

from __future__ import annotations

from dataclasses import dataclass

SPLIT_KEYS = ("train", "val", "test")  # what CoOp's split_zhou_*.json files hold


@dataclass(frozen=True)
class Resource:
    """One downloadable file and where its content goes under the data root.

    ``target`` is a folder for archives (members matching ``select`` go there, without
    the leading ``strip`` folder, or by file name alone when ``flat``) and a file path
    otherwise. ``expects``: globs under the data root that must each match a file for the
    resource to count as present (default: the target file, or any file below the target
    folder). ``keys``: for a JSON file without a published hash, the keys its top-level
    object must hold (its content check before it is kept)."""

    name: str
    url: str
    known_hash: str | None  # "md5:..." or "sha256:..."; None: none is published
    target: str
    manual: str  # how to get it by hand
    size: str  # what a reader downloads
    archive: bool = False
    select: tuple[str, ...] = ("*",)
    strip: str = ""
    flat: bool = False
    inner: str = ""  # the member of the archive that is the archive to unpack ("": itself)
    expects: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()

    @property
    def wanted(self) -> tuple[str, ...]:
        """The globs (under the data root) that must each match a file."""
        return self.expects or ((f"{self.target}/**/*",) if self.archive else (self.target,))


RESOURCES = {r.name: r for r in (
    # the file, URL and MD5 that torchvision.datasets.EuroSAT downloads (a test keeps them equal)
    Resource("eurosat-images",
             "https://huggingface.co/datasets/torchgeo/eurosat/resolve/c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
             "md5:c8fa014336c82ac7804f0398fcb19387", "eurosat/2750",
             "EuroSAT.zip (the RGB images, 27,000 JPEGs of 64x64) unpacked so that the class folders lie in "
             "<data root>/eurosat/2750/", "about 90 MB", archive=True, select=("2750/*",), strip="2750/"),
    Resource("eurosat-split", "https://drive.google.com/uc?export=download&id=1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o",
             None, "eurosat/split_zhou_EuroSAT.json",
             "CoOp's split_zhou_EuroSAT.json (linked from DATASETS.md of github.com/KaiyangZhou/CoOp) saved as "
             "<data root>/eurosat/split_zhou_EuroSAT.json", "a few MB", keys=SPLIT_KEYS),
    Resource("msrvtt-annotations", "https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msrvtt_data.zip",
             None, "msrvtt",
             "CLIP4Clip's msrvtt_data.zip (its README, 'Data Preparing'), with MSRVTT_data.json, "
             "MSRVTT_train.9k.csv and MSRVTT_JSFUSION_test.csv copied into <data root>/msrvtt/", "a few MB",
             archive=True, select=("*MSRVTT_data.json", "*MSRVTT_train.9k.csv", "*MSRVTT_JSFUSION_test.csv"),
             flat=True, expects=("msrvtt/MSRVTT_data.json", "msrvtt/MSRVTT_train.9k.csv",
                                 "msrvtt/MSRVTT_JSFUSION_test.csv")),
    Resource("msrvtt-videos", "https://www.robots.ox.ac.uk/~maxbain/frozen-in-time/data/MSRVTT.zip", None,
             "msrvtt/MSRVTT_Videos",
             "Frozen in Time's MSRVTT.zip (github.com/m-bain/frozen-in-time, 'Finetuning benchmarks'), its "
             "10,000 video<N>.mp4 files copied into <data root>/msrvtt/MSRVTT_Videos/",
             "several GB (all 10,000 videos; there is no smaller package)", archive=True, select=("*.mp4",),
             flat=True, expects=("msrvtt/MSRVTT_Videos/*.mp4",)),
)}


def dataset_of(resource: str) -> str:
    """The dataset (key of :data:`DATASETS`, the argument of ``python -m
    clipadapt.data.fetch.download``) that ``resource`` belongs to."""
    return next((d for d, names in DATASETS.items() if resource in names), resource)


def command(resource: str) -> str:
    """The command that fetches the dataset of ``resource``."""
    return f"python -m clipadapt.data.fetch {dataset_of(resource)}"


def _drive(file_id: str) -> str:
    return f"https://drive.google.com/uc?export=download&id={file_id}"


def _coop_split(name: str, folder: str, split: str, drive_id: str) -> Resource:
    """CoOp's split file of a dataset (a Google Drive link of CoOp's DATASETS.md; no hash published)."""
    return Resource(f"{name}-split", _drive(drive_id), None, f"{folder}/{split}",
                    f"CoOp's {split} (linked from DATASETS.md of github.com/KaiyangZhou/CoOp) saved as "
                    f"<data root>/{folder}/{split}", "a few MB", keys=SPLIT_KEYS)


def _images(name, url, md5, folder, what, size, select, strip, **kw) -> Resource:
    return Resource(f"{name}-images", url, md5 and f"md5:{md5}", folder,
                    f"{what} from {url or 'the publisher'}, unpacked so that <data root>/{folder} holds what CoOp's "
                    f"DATASETS.md shows", size, archive=True, select=select, strip=strip, **kw)


_VGG = "https://www.robots.ox.ac.uk/~vgg/data"
# General-10 (SoftCPT): the folders and files of CoOp's DATASETS.md; image archives and MD5s as
# torchvision.datasets downloads them (Caltech101, DTD, Flowers102, OxfordIIITPet, Food101, SUN397)
GENERAL10_RESOURCES = (
    _images("caltech101", "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
            "3138e1922a9193bfa496528edbbc45d0", "caltech-101/101_ObjectCategories",
            "caltech-101.zip (its 101_ObjectCategories.tar.gz)", "about 140 MB",
            ("101_ObjectCategories/*",), "101_ObjectCategories/", inner="caltech-101/101_ObjectCategories.tar.gz"),
    _coop_split("caltech101", "caltech-101", "split_zhou_Caltech101.json", "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"),
    _images("dtd", f"{_VGG}/dtd/download/dtd-r1.0.1.tar.gz", "fff73e5086ae6bdbea199a49dfb8a4c1", "dtd/images",
            "dtd-r1.0.1.tar.gz", "about 600 MB", ("dtd/images/*",), "dtd/images/"),
    _coop_split("dtd", "dtd", "split_zhou_DescribableTextures.json", "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"),
    _images("flowers", f"{_VGG}/flowers/102/102flowers.tgz", "52808999861908f626f3c1f4e79d11fa",
            "oxford_flowers/jpg", "102flowers.tgz", "about 330 MB", ("jpg/*",), "jpg/"),
    _coop_split("flowers", "oxford_flowers", "split_zhou_OxfordFlowers.json", "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"),
    _images("pets", f"{_VGG}/pets/data/images.tar.gz", "5c4f3ee8e5d25df40f4fd59a7f44e54c", "oxford_pets/images",
            "images.tar.gz", "about 790 MB", ("images/*",), "images/"),
    _coop_split("pets", "oxford_pets", "split_zhou_OxfordPets.json", "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"),
    _images("food101", "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz", "85eeb15f3717b99a5da872d97d918f87",
            "food-101/images", "food-101.tar.gz", "about 5 GB", ("food-101/images/*",), "food-101/images/"),
    _coop_split("food101", "food-101", "split_zhou_Food101.json", "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"),
    # torchvision downloads this archive without a checksum: none is published
    _images("aircraft", f"{_VGG}/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz", None, "fgvc_aircraft",
            "fgvc-aircraft-2013b.tar.gz (its data/ folder)", "about 2.7 GB", ("fgvc-aircraft-2013b/data/*",),
            "fgvc-aircraft-2013b/data/"),
    _images("sun397", "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz", "8ca2778205c41d23104230ba66911c7a",
            "sun397/SUN397", "SUN397.tar.gz", "about 37 GB", ("SUN397/*",), "SUN397/"),
    _coop_split("sun397", "sun397", "split_zhou_SUN397.json", "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"),
    # a large Drive file: the confirm=t form skips Drive's "cannot scan for viruses" page
    _images("ucf101", "https://drive.usercontent.google.com/download?id=10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O"
            "&export=download&confirm=t", None, "ucf101/UCF-101-midframes", "CoOp's UCF-101-midframes.zip",
            "size not stated (the middle frames of 13,320 videos)", ("UCF-101-midframes/*",), "UCF-101-midframes/"),
    _coop_split("ucf101", "ucf101", "split_zhou_UCF101.json", "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"),
    # the original site is gone and torchvision's StanfordCars no longer downloads it
    _images("cars", "", None, "stanford_cars", "cars_train/, cars_test/ and the devkit of Stanford Cars (there is "
            "no working public download: a mirror you trust, e.g. a Kaggle copy)", "about 1.9 GB", ("*",), ""),
    _coop_split("cars", "stanford_cars", "split_zhou_StanfordCars.json", "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"),
)
RESOURCES |= {r.name: r for r in GENERAL10_RESOURCES}
DATASETS = {"eurosat": ("eurosat-images", "eurosat-split"), "msrvtt": ("msrvtt-annotations", "msrvtt-videos"),
            # the folders of clipadapt.data.multitask.GENERAL10
            **{f: (f"{n}-images", f"{n}-split") for f, n in (
                ("caltech-101", "caltech101"), ("dtd", "dtd"), ("oxford_flowers", "flowers"), ("oxford_pets", "pets"),
                ("food-101", "food101"), ("sun397", "sun397"), ("ucf101", "ucf101"), ("stanford_cars", "cars"))},
            "fgvc_aircraft": ("aircraft-images",)}

# The other retrieval benchmarks (chapters 4-5, ``reproduce --dataset``): the files with a stable
# public URL. DiDeMo's and ActivityNet's videos and all of LSMDC (MPII's permission) have none:
# their loaders say where to get them (clipadapt.data.formats.didemo and its siblings, book/how-to-run.md).
_LM = "https://raw.githubusercontent.com/LisaAnne/LocalizingMoments/b6a555c8134581305d0ed4716fbc192860e0b88c/data"
_CE = ("https://raw.githubusercontent.com/albanie/collaborative-experts/7eb3b9d362ee313a78cd0a2793c3b6470f8e78f3/"
       "misc/datasets/didemo")
RETRIEVAL_RESOURCES = (
    *(Resource(f"didemo-{s}-data", f"{_LM}/{s}_data.json", None, f"didemo/{s}_data.json",
               f"DiDeMo's data/{s}_data.json (github.com/LisaAnne/LocalizingMoments) saved as "
               f"<data root>/didemo/{s}_data.json", "a few MB") for s in ("train", "val", "test")),
    *(Resource(f"didemo-{s}-list", f"{_CE}/{s}_list.txt", None, f"didemo/{s}_list.txt",
               f"collaborative-experts' misc/datasets/didemo/{s}_list.txt saved as <data root>/didemo/{s}_list.txt",
               "under 1 MB") for s in ("train", "val", "test")),
    Resource("activitynet-annotations", "https://cs.stanford.edu/people/ranjaykrishna/densevid/captions.zip", None,
             "activitynet",
             "ActivityNet Captions' captions.zip (cs.stanford.edu/people/ranjaykrishna/densevid/), with train.json, "
             "val_1.json, train_ids.json and val_ids.json copied into <data root>/activitynet/", "a few MB",
             archive=True, select=("*train.json", "*val_1.json", "*train_ids.json", "*val_ids.json"),
             flat=True, expects=tuple(f"activitynet/{f}" for f in ("train.json", "val_1.json", "train_ids.json",
                                                                   "val_ids.json"))),
    Resource("msvd-annotations", "https://github.com/ArrowLuo/CLIP4Clip/releases/download/v0.0/msvd_data.zip", None,
             "msvd",
             "CLIP4Clip's msvd_data.zip (its README, 'Data Preparing'), with raw-captions.pkl, train_list.txt, "
             "val_list.txt and test_list.txt copied into <data root>/msvd/", "a few MB", archive=True,
             select=("*raw-captions.pkl", "*train_list.txt", "*val_list.txt", "*test_list.txt"), flat=True,
             expects=tuple(f"msvd/{f}" for f in ("raw-captions.pkl", "train_list.txt", "val_list.txt",
                                                 "test_list.txt"))),
    Resource("msvd-videos", "https://www.cs.utexas.edu/users/ml/clamp/videoDescription/YouTubeClips.tar", None,
             "msvd/MSVD_Videos",
             "MSVD's YouTubeClips.tar (www.cs.utexas.edu/users/ml/clamp/videoDescription/), its 1,970 <id>.avi "
             "clips copied into <data root>/msvd/MSVD_Videos/", "about 1.7 GB", archive=True, select=("*.avi",),
             flat=True, expects=("msvd/MSVD_Videos/*.avi",)),
)
RESOURCES |= {r.name: r for r in RETRIEVAL_RESOURCES}
DATASETS |= {"didemo": tuple(f"didemo-{s}-{k}" for k in ("data", "list") for s in ("train", "val", "test")),
             "activitynet": ("activitynet-annotations",), "msvd": ("msvd-annotations", "msvd-videos")}
