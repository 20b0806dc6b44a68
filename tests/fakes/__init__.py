"""Stand-ins for what the tests cannot reach: speech recognition, speech synthesis, voice
activity detection and the caller's audio. They implement livekit-agents' own interfaces, so an
AgentSession runs its real voice pipeline (VAD, STT, end of turn, LLM, TTS, playout,
interruptions) on them; nothing in them knows about our recording."""

from tests.fakes.audio import Microphone, Speaker, TextSink
from tests.fakes.caller import ScriptedCaller
from tests.fakes.stt import ScriptedSTT
from tests.fakes.tts import FakeTTS
from tests.fakes.vad import EnergyVAD

__all__ = ["ScriptedCaller", "EnergyVAD", "FakeTTS", "Microphone", "ScriptedSTT", "Speaker", "TextSink"]
