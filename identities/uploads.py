"""Upload validation: every photo is checked from its bytes, re-encoded and renamed.

A rejected file raises UploadError before anything is stored; an accepted one is stored
under a random name chosen here, never the client's.
"""

import hashlib
import io
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from training import services

from .models import FaceImage

# Decided from the bytes by Pillow, never from the file name or the client's content type.
ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"}
THUMBNAIL_SIZE = (256, 256)
JPEG_QUALITY = 90
# Longest side over shortest: above this a photo is a sliver, not a picture of anyone.
MAX_ASPECT_RATIO = 20


class UploadError(Exception):
    """A file that cannot be used, with a message for the person who sent it."""


@dataclass
class CleanImage:
    image: Image.Image  # RGB, orientation applied, metadata gone
    sha256: str  # of the bytes as uploaded, to refuse the same file twice

    @property
    def width(self):
        return self.image.width

    @property
    def height(self):
        return self.image.height


def read_upload(uploaded_file):
    """Read an UploadedFile (or any file object) into bytes, refusing it above the size cap."""
    limit = settings.FACEWEB_MAX_UPLOAD_BYTES
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > limit:
        raise UploadError(f"The file is larger than the {limit // (1024 * 1024)} MB limit.")
    data = uploaded_file.read(limit + 1)
    if len(data) > limit:
        raise UploadError(f"The file is larger than the {limit // (1024 * 1024)} MB limit.")
    return data


def clean_image(data):
    """Decode and check image bytes; returns a CleanImage or raises UploadError."""
    if not data:
        raise UploadError("The file is empty.")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format not in ALLOWED_FORMATS:
                raise UploadError(
                    f"{opened.format} images are not accepted; "
                    "use JPEG, PNG, WebP, GIF, BMP or TIFF."
                )
            _check_pixels(opened.width, opened.height)
            _check_shape(opened.width, opened.height)
            opened.load()  # decodes everything now, so a truncated file fails here
            image = ImageOps.exif_transpose(opened)
            image = services.to_rgb(image)
            # Pillow carries comments, EXIF and text chunks along in .info and writes the
            # JPEG comment back on save: a script hidden there would survive re-encoding.
            image.info = {}
    except UploadError:
        raise
    except Image.DecompressionBombError:
        raise UploadError(_too_many_pixels("far more")) from None
    except UnidentifiedImageError:
        raise UploadError("This file is not an image faceweb can read.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(f"The image is damaged or truncated ({exc}).") from None
    return CleanImage(image=image, sha256=hashlib.sha256(data).hexdigest())


def _check_pixels(width, height):
    # Pillow itself only raises at twice its own limit, so the cap is checked here, before
    # any pixel is decoded.
    if width * height > settings.FACEWEB_MAX_PIXELS:
        raise UploadError(_too_many_pixels(f"{width}x{height}"))


def _check_shape(width, height):
    # Face detection scales a photo's longest side down to about a thousand pixels; a sliver
    # (30000x10) would then be under a pixel high. No face fits in it anyway.
    if max(width, height) > MAX_ASPECT_RATIO * max(1, min(width, height)):
        raise UploadError(f"This image is {width}x{height}: too narrow to hold a face.")


def _too_many_pixels(size):
    limit = settings.FACEWEB_MAX_PIXELS / 1_000_000
    return f"The image has too many pixels ({size}); the limit is {limit:g} megapixels."


def encode_jpeg(image, max_size=None):
    if max_size:
        image = image.copy()
        image.thumbnail(max_size)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def save_jpeg(folder, image, max_size=None):
    """Store an image as a JPEG under a random name; returns the storage name."""
    return default_storage.save(
        f"{folder}/{uuid.uuid4().hex}.jpg", ContentFile(encode_jpeg(image, max_size))
    )


def add_face_image(identity, clean, *, original_name="", user=None, source=None):
    """Store a cleaned photo for an identity, with its face crop; returns the FaceImage.

    Raises UploadError for a duplicate. A photo without a usable face is still stored, with
    a status saying why training leaves it out. Files are written first and removed again
    if the row cannot be created, so a refusal leaves neither a row nor a file.
    """
    if identity.images.filter(sha256=clean.sha256).exists():
        raise UploadError(f"This photo is already among {identity.name}'s photos.")
    face = services.analyse_enrolment_photo(clean.image)
    return _store_face_image(
        identity,
        clean,
        face,
        original_name=original_name,
        user=user,
        source=source or FaceImage.Source.UPLOAD,
    )


def add_reviewed_face(identity, image, box, *, user, source_face):
    """Store a face a reviewer named (from an identification) as a photo of identity.

    image is the face with some context around it, box the face inside it: the face is not
    detected again, so the training crop is the one the model was shown. Same checks,
    files and rollback as an upload; raises UploadError for a duplicate.
    """
    clean = CleanImage(
        image=services.to_rgb(image), sha256=hashlib.sha256(encode_jpeg(image)).hexdigest()
    )
    if identity.images.filter(sha256=clean.sha256).exists():
        raise UploadError(f"This face is already among {identity.name}'s photos.")
    face = services.analyse_reviewed_face(clean.image, box)
    return _store_face_image(
        identity,
        clean,
        face,
        original_name=f"prediction-{source_face.prediction_id}-face-{source_face.index + 1}.jpg",
        user=user,
        source=FaceImage.Source.REVIEW,
        source_face=source_face,
    )


def _store_face_image(identity, clean, face, *, original_name, user, source, source_face=None):
    aligned = face.aligned
    names = {
        "image": save_jpeg("faces", clean.image),
        "thumbnail": save_jpeg("thumbs", clean.image, THUMBNAIL_SIZE),
        "face_crop": save_jpeg("crops", face.crop) if face.crop is not None else "",
        "face_chip": save_jpeg("chips", aligned.chip) if aligned else "",
    }
    try:
        with transaction.atomic():
            return FaceImage.objects.create(
                identity=identity,
                original_name=original_name[:255],
                sha256=clean.sha256,
                width=clean.width,
                height=clean.height,
                status=face.status,
                box=face.box,
                detector_score=face.score,
                candidates=face.candidates,
                landmarks=aligned.landmarks if aligned else None,
                embedding=aligned.embedding if aligned else None,
                embedding_model=aligned.embedding_model if aligned else "",
                uploaded_by=user,
                source=source,
                source_face=source_face,
                **names,
            )
    except IntegrityError:
        raise UploadError(f"This photo is already among {identity.name}'s photos.") from None
    finally:
        if not FaceImage.objects.filter(image=names["image"]).exists():
            _delete_stored(names.values())


def choose_face(face_image, index):
    """Make candidate face number index the person in a photo with several faces.

    Raises UploadError for an index that is not one of the photo's faces.
    """
    if not 0 <= index < len(face_image.candidates):
        raise UploadError("That face is not one of this photo's faces.")
    box = face_image.candidates[index]["box"]
    with face_image.image.open("rb") as handle:
        image = Image.open(handle)
        image.load()
    old_files = [face_image.face_crop.name, face_image.face_chip.name]
    aligned = services.align_faces([(image, box)])[0]
    face_image.face_crop = save_jpeg("crops", services.crop_for_box(image, box))
    set_aligned_face(face_image, aligned)
    face_image.box = box
    face_image.detector_score = face_image.candidates[index]["score"]
    face_image.status = FaceImage.Status.OK
    face_image.save(update_fields=["face_crop", "box", "detector_score", "status", *ALIGNED_FIELDS])
    _delete_stored(old_files)
    return face_image


# What set_aligned_face changes on a FaceImage.
ALIGNED_FIELDS = ["face_chip", "landmarks", "embedding", "embedding_model"]


def set_aligned_face(face_image, aligned):
    """Store the chip of an AlignedFace (services.align_faces) and set ALIGNED_FIELDS on a
    photo, unsaved. The chip file it had before is left for the caller to delete once the
    row points to the new one."""
    face_image.face_chip = save_jpeg("chips", aligned.chip)
    face_image.landmarks = aligned.landmarks
    face_image.embedding = aligned.embedding
    face_image.embedding_model = aligned.embedding_model


def _delete_stored(names):
    for name in names:
        if name:
            default_storage.delete(name)


def add_uploaded_files(identity, files, user=None):
    """Validate and store several uploaded files; returns (added, [(file name, reason)])."""
    added, refused = [], []
    for uploaded in files:
        try:
            clean = clean_image(read_upload(uploaded))
            added.append(add_face_image(identity, clean, original_name=uploaded.name, user=user))
        except UploadError as exc:
            refused.append((uploaded.name, str(exc)))
    return added, refused
