from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]

class SaliencyOutput(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SALIENCY_OUTPUT_UNSPECIFIED: _ClassVar[SaliencyOutput]
    SALIENCY_OUTPUT_OVERLAY: _ClassVar[SaliencyOutput]
    SALIENCY_OUTPUT_HEATMAP: _ClassVar[SaliencyOutput]
    SALIENCY_OUTPUT_FLOAT32: _ClassVar[SaliencyOutput]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
SALIENCY_OUTPUT_UNSPECIFIED: SaliencyOutput
SALIENCY_OUTPUT_OVERLAY: SaliencyOutput
SALIENCY_OUTPUT_HEATMAP: SaliencyOutput
SALIENCY_OUTPUT_FLOAT32: SaliencyOutput

class StylizeRequest(_message.Message):
    __slots__ = ("image", "style", "style_image", "strength", "preserve_color", "max_side", "format", "quality", "style_size", "blend", "model", "mask", "mask_saliency", "background", "background_blend")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    STYLE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_COLOR_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    STYLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BLEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    MASK_SALIENCY_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_BLEND_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    style: str
    style_image: bytes
    strength: float
    preserve_color: bool
    max_side: int
    format: ImageFormat
    quality: int
    style_size: int
    blend: _containers.RepeatedCompositeFieldContainer[StyleWeight]
    model: str
    mask: bytes
    mask_saliency: bool
    background: str
    background_blend: _containers.RepeatedCompositeFieldContainer[StyleWeight]
    def __init__(self, image: _Optional[bytes] = ..., style: _Optional[str] = ..., style_image: _Optional[bytes] = ..., strength: _Optional[float] = ..., preserve_color: _Optional[bool] = ..., max_side: _Optional[int] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., style_size: _Optional[int] = ..., blend: _Optional[_Iterable[_Union[StyleWeight, _Mapping]]] = ..., model: _Optional[str] = ..., mask: _Optional[bytes] = ..., mask_saliency: _Optional[bool] = ..., background: _Optional[str] = ..., background_blend: _Optional[_Iterable[_Union[StyleWeight, _Mapping]]] = ...) -> None: ...

class StyleWeight(_message.Message):
    __slots__ = ("style", "weight")
    STYLE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    style: str
    weight: float
    def __init__(self, style: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class StylizeResponse(_message.Message):
    __slots__ = ("image", "content_type", "model", "version", "provider", "timings_ms", "width", "height", "batch_size", "style_cached", "style", "background")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    STYLE_CACHED_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    content_type: str
    model: str
    version: str
    provider: str
    timings_ms: _containers.ScalarMap[str, float]
    width: int
    height: int
    batch_size: int
    style_cached: bool
    style: str
    background: str
    def __init__(self, image: _Optional[bytes] = ..., content_type: _Optional[str] = ..., model: _Optional[str] = ..., version: _Optional[str] = ..., provider: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., batch_size: _Optional[int] = ..., style_cached: _Optional[bool] = ..., style: _Optional[str] = ..., background: _Optional[str] = ...) -> None: ...

class ListStylesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StyleInfo(_message.Message):
    __slots__ = ("name", "style", "arch", "version", "title", "artist", "year", "licence", "provider", "precision", "net")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ARTIST_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    NET_FIELD_NUMBER: _ClassVar[int]
    name: str
    style: str
    arch: str
    version: str
    title: str
    artist: str
    year: str
    licence: str
    provider: str
    precision: str
    net: str
    def __init__(self, name: _Optional[str] = ..., style: _Optional[str] = ..., arch: _Optional[str] = ..., version: _Optional[str] = ..., title: _Optional[str] = ..., artist: _Optional[str] = ..., year: _Optional[str] = ..., licence: _Optional[str] = ..., provider: _Optional[str] = ..., precision: _Optional[str] = ..., net: _Optional[str] = ...) -> None: ...

class ListStylesResponse(_message.Message):
    __slots__ = ("styles",)
    STYLES_FIELD_NUMBER: _ClassVar[int]
    styles: _containers.RepeatedCompositeFieldContainer[StyleInfo]
    def __init__(self, styles: _Optional[_Iterable[_Union[StyleInfo, _Mapping]]] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("index", "label", "probability")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    index: int
    label: str
    probability: float
    def __init__(self, index: _Optional[int] = ..., label: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("image", "top_k", "backbone")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    top_k: int
    backbone: str
    def __init__(self, image: _Optional[bytes] = ..., top_k: _Optional[int] = ..., backbone: _Optional[str] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("predictions", "backbone")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    backbone: str
    def __init__(self, predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., backbone: _Optional[str] = ...) -> None: ...

class SaliencyRequest(_message.Message):
    __slots__ = ("image", "method", "target_index", "target_label", "output", "backbone", "params", "top_k")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_INDEX_FIELD_NUMBER: _ClassVar[int]
    TARGET_LABEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    method: str
    target_index: int
    target_label: str
    output: SaliencyOutput
    backbone: str
    params: _struct_pb2.Struct
    top_k: int
    def __init__(self, image: _Optional[bytes] = ..., method: _Optional[str] = ..., target_index: _Optional[int] = ..., target_label: _Optional[str] = ..., output: _Optional[_Union[SaliencyOutput, str]] = ..., backbone: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., top_k: _Optional[int] = ...) -> None: ...

class SaliencyResponse(_message.Message):
    __slots__ = ("map", "content_type", "width", "height", "target", "predictions", "method")
    MAP_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    map: bytes
    content_type: str
    width: int
    height: int
    target: int
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    method: str
    def __init__(self, map: _Optional[bytes] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., target: _Optional[int] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., method: _Optional[str] = ...) -> None: ...

class GatysRequest(_message.Message):
    __slots__ = ("content", "styles", "options", "format", "quality", "backbone")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STYLES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    styles: _containers.RepeatedScalarFieldContainer[bytes]
    options: _struct_pb2.Struct
    format: ImageFormat
    quality: int
    backbone: str
    def __init__(self, content: _Optional[bytes] = ..., styles: _Optional[_Iterable[bytes]] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., backbone: _Optional[str] = ...) -> None: ...

class DeepDreamRequest(_message.Message):
    __slots__ = ("image", "options", "format", "quality", "backbone", "guide")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    GUIDE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    options: _struct_pb2.Struct
    format: ImageFormat
    quality: int
    backbone: str
    guide: bytes
    def __init__(self, image: _Optional[bytes] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., backbone: _Optional[str] = ..., guide: _Optional[bytes] = ...) -> None: ...

class RenderProgress(_message.Message):
    __slots__ = ("step", "total", "losses", "elapsed_s", "eta_s", "stage", "preview")
    class LossesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    ETA_S_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    step: int
    total: int
    losses: _containers.ScalarMap[str, float]
    elapsed_s: float
    eta_s: float
    stage: str
    preview: bytes
    def __init__(self, step: _Optional[int] = ..., total: _Optional[int] = ..., losses: _Optional[_Mapping[str, float]] = ..., elapsed_s: _Optional[float] = ..., eta_s: _Optional[float] = ..., stage: _Optional[str] = ..., preview: _Optional[bytes] = ...) -> None: ...

class RenderResult(_message.Message):
    __slots__ = ("image", "content_type", "width", "height", "duration_s", "attack")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    ATTACK_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    content_type: str
    width: int
    height: int
    duration_s: float
    attack: AttackOutcome
    def __init__(self, image: _Optional[bytes] = ..., content_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., duration_s: _Optional[float] = ..., attack: _Optional[_Union[AttackOutcome, _Mapping]] = ...) -> None: ...

class RenderEvent(_message.Message):
    __slots__ = ("job_id", "state", "progress", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: str
    progress: RenderProgress
    result: RenderResult
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[str] = ..., progress: _Optional[_Union[RenderProgress, _Mapping]] = ..., result: _Optional[_Union[RenderResult, _Mapping]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("images", "normalize", "backbone")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    normalize: bool
    backbone: str
    def __init__(self, images: _Optional[_Iterable[bytes]] = ..., normalize: _Optional[bool] = ..., backbone: _Optional[str] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("vector", "prediction")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    vector: _containers.RepeatedScalarFieldContainer[float]
    prediction: Prediction
    def __init__(self, vector: _Optional[_Iterable[float]] = ..., prediction: _Optional[_Union[Prediction, _Mapping]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("backbone", "tap", "dimension", "normalized", "embeddings")
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    TAP_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    backbone: str
    tap: str
    dimension: int
    normalized: bool
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    def __init__(self, backbone: _Optional[str] = ..., tap: _Optional[str] = ..., dimension: _Optional[int] = ..., normalized: _Optional[bool] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ...) -> None: ...

class ListGalleriesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GalleryInfo(_message.Message):
    __slots__ = ("name", "backbone", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    backbone: str
    size: int
    def __init__(self, name: _Optional[str] = ..., backbone: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class ListGalleriesResponse(_message.Message):
    __slots__ = ("galleries",)
    GALLERIES_FIELD_NUMBER: _ClassVar[int]
    galleries: _containers.RepeatedCompositeFieldContainer[GalleryInfo]
    def __init__(self, galleries: _Optional[_Iterable[_Union[GalleryInfo, _Mapping]]] = ...) -> None: ...

class GalleryImage(_message.Message):
    __slots__ = ("id", "image")
    ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    image: bytes
    def __init__(self, id: _Optional[str] = ..., image: _Optional[bytes] = ...) -> None: ...

class AddToGalleryRequest(_message.Message):
    __slots__ = ("gallery", "images", "backbone")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    images: _containers.RepeatedCompositeFieldContainer[GalleryImage]
    backbone: str
    def __init__(self, gallery: _Optional[str] = ..., images: _Optional[_Iterable[_Union[GalleryImage, _Mapping]]] = ..., backbone: _Optional[str] = ...) -> None: ...

class AddToGalleryResponse(_message.Message):
    __slots__ = ("gallery", "backbone", "added", "size")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    backbone: str
    added: int
    size: int
    def __init__(self, gallery: _Optional[str] = ..., backbone: _Optional[str] = ..., added: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class SearchGalleryRequest(_message.Message):
    __slots__ = ("gallery", "image", "k")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    image: bytes
    k: int
    def __init__(self, gallery: _Optional[str] = ..., image: _Optional[bytes] = ..., k: _Optional[int] = ...) -> None: ...

class Neighbour(_message.Message):
    __slots__ = ("id", "distance", "index")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    id: str
    distance: float
    index: int
    def __init__(self, id: _Optional[str] = ..., distance: _Optional[float] = ..., index: _Optional[int] = ...) -> None: ...

class SearchGalleryResponse(_message.Message):
    __slots__ = ("gallery", "backbone", "neighbours")
    GALLERY_FIELD_NUMBER: _ClassVar[int]
    BACKBONE_FIELD_NUMBER: _ClassVar[int]
    NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    gallery: str
    backbone: str
    neighbours: _containers.RepeatedCompositeFieldContainer[Neighbour]
    def __init__(self, gallery: _Optional[str] = ..., backbone: _Optional[str] = ..., neighbours: _Optional[_Iterable[_Union[Neighbour, _Mapping]]] = ...) -> None: ...

class AttackRequest(_message.Message):
    __slots__ = ("image", "method", "target_index", "target_label", "eps", "steps", "options")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_INDEX_FIELD_NUMBER: _ClassVar[int]
    TARGET_LABEL_FIELD_NUMBER: _ClassVar[int]
    EPS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    method: str
    target_index: int
    target_label: str
    eps: float
    steps: int
    options: _struct_pb2.Struct
    def __init__(self, image: _Optional[bytes] = ..., method: _Optional[str] = ..., target_index: _Optional[int] = ..., target_label: _Optional[str] = ..., eps: _Optional[float] = ..., steps: _Optional[int] = ..., options: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AttackOutcome(_message.Message):
    __slots__ = ("method", "target", "success", "steps", "linf", "perturbation", "before", "after")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LINF_FIELD_NUMBER: _ClassVar[int]
    PERTURBATION_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    method: str
    target: int
    success: bool
    steps: int
    linf: int
    perturbation: bytes
    before: _containers.RepeatedCompositeFieldContainer[Prediction]
    after: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, method: _Optional[str] = ..., target: _Optional[int] = ..., success: _Optional[bool] = ..., steps: _Optional[int] = ..., linf: _Optional[int] = ..., perturbation: _Optional[bytes] = ..., before: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., after: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class JobRef(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("job_id", "kind", "state", "attempts")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: str
    state: str
    attempts: int
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...
