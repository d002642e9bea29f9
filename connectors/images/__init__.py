"""Source kind `images`: camera files in drop folders (`connector`), each probed in a worker
process (`probe`: hash, decode, EXIF, features, content-addressed copy)."""

from connectors.images.config import ImageSource
from plantlake.core.kinds import SourceKind

KIND = SourceKind("images", config=ImageSource, connector="connectors.images.connector:ImagesConnector",
                  tables=("inspection_images",),
                  discover="connectors.images.discover:discover")
