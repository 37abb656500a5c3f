# A utility needing a package that is no longer installed, as some old checkouts had.
import pydensecrf.densecrf as dcrf  # noqa: F401


def crf(image):
    return image
