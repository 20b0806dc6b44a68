"""The write-behind recorder (see db.recorder.recorder): `from db.recorder import Recorder`."""

from db.recorder.options import RecorderClosed, RecorderOptions, RecorderStats
from db.recorder.recorder import Recorder

__all__ = ["Recorder", "RecorderClosed", "RecorderOptions", "RecorderStats"]
