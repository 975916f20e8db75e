"use client";
// Voice notes: tap the microphone to record (then send or cancel), or hold it and let
// go to send, sliding away to cancel. Recorded with MediaRecorder as Opus.
import { useEffect, useRef, useState } from "react";
import { formatDuration } from "./MediaAttachment";

/** The format recorded: Opus in WebM where the browser can, else its default. */
function recordingType(): string | undefined {
  return ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"].find((type) => MediaRecorder.isTypeSupported(type));
}

interface Recording {
  recorder: MediaRecorder;
  stream: MediaStream;
  chunks: Blob[];
  startedAt: number;
  /** Held down: letting go sends. */
  held: boolean;
  startX: number;
}

const HOLD_MS = 500;
const SLIDE_TO_CANCEL_PX = 80;

export function VoiceRecorder({ onRecorded, onError, onActive }: { onRecorded: (file: File) => void; onError: (text: string) => void; onActive: (active: boolean) => void }) {
  const recording = useRef<Recording | null>(null);
  const [elapsed, setElapsed] = useState<number | null>(null);
  const [sliding, setSliding] = useState(false);

  useEffect(() => {
    if (elapsed === null) return;
    const timer = setInterval(() => recording.current && setElapsed(Date.now() - recording.current.startedAt), 200);
    return () => clearInterval(timer);
  }, [elapsed === null]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => () => stop(false), []); // eslint-disable-line react-hooks/exhaustive-deps

  async function start(x: number) {
    if (recording.current) return;
    if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
      onError("This browser can't record voice messages.");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const type = recordingType();
      const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
      const state: Recording = { recorder, stream, chunks: [], startedAt: Date.now(), held: true, startX: x };
      recorder.ondataavailable = (event) => event.data.size > 0 && state.chunks.push(event.data);
      recorder.start(250);
      recording.current = state;
      setElapsed(0);
      onActive(true);
    } catch {
      onError("Natter can't use the microphone. Allow it in the browser's site settings.");
    }
  }

  /** Ends the recording; sends it, or drops it. */
  function stop(send: boolean) {
    const state = recording.current;
    recording.current = null;
    setElapsed(null);
    setSliding(false);
    if (!state) return;
    onActive(false);
    state.recorder.onstop = () => {
      for (const track of state.stream.getTracks()) track.stop();
      if (!send) return;
      const type = (state.recorder.mimeType || "audio/webm").split(";")[0] ?? "audio/webm";
      const extension = type.includes("ogg") ? "ogg" : type.includes("mp4") ? "m4a" : "webm";
      const file = new File(state.chunks, `voice-${new Date().toISOString().replace(/[:.]/g, "-")}.${extension}`, { type });
      if (file.size > 0) onRecorded(file);
    };
    if (state.recorder.state !== "inactive") state.recorder.stop();
    else state.recorder.onstop(new Event("stop"));
  }

  return (
    <>
      {elapsed !== null && (
        <div className="flex flex-1 items-center gap-3" role="group" aria-label="Recording a voice message">
          <span aria-hidden="true" className="h-3 w-3 animate-pulse rounded-full bg-red-600" />
          <span role="timer" aria-live="off" className="tabular-nums">
            {formatDuration(elapsed)}
          </span>
          <span className="flex-1 text-sm text-gray-600 dark:text-gray-300">{sliding ? "Let go to cancel" : "Recording…"}</span>
          <button type="button" onClick={() => stop(false)} className="rounded-lg px-3 py-2 text-sm font-semibold text-red-700 hover:bg-red-50 dark:text-red-400 dark:hover:bg-red-950">
            Cancel
          </button>
          <button type="button" onClick={() => stop(true)} className="rounded-lg bg-brand-700 px-3 py-2 text-sm font-semibold text-white hover:bg-brand-600">
            Send voice message
          </button>
        </div>
      )}
      <button
        type="button"
        aria-label={elapsed === null ? "Record a voice message" : "Microphone, recording"}
        title="Tap to record, or hold"
        className="inline-flex h-11 w-11 items-center justify-center rounded-full text-gray-700 hover:bg-gray-200 dark:text-gray-200 dark:hover:bg-gray-700"
        onPointerDown={(event) => {
          event.currentTarget.setPointerCapture(event.pointerId);
          void start(event.clientX);
        }}
        onPointerMove={(event) => {
          const state = recording.current;
          if (state?.held) setSliding(state.startX - event.clientX > SLIDE_TO_CANCEL_PX);
        }}
        onPointerUp={(event) => {
          const state = recording.current;
          if (!state) return;
          if (state.startX - event.clientX > SLIDE_TO_CANCEL_PX) return stop(false);
          // A tap keeps recording until Send or Cancel; a hold sends when let go.
          if (Date.now() - state.startedAt >= HOLD_MS) stop(true);
          else state.held = false;
        }}
      >
        <svg aria-hidden="true" viewBox="0 0 24 24" className="h-6 w-6 fill-current">
          <path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z" />
        </svg>
      </button>
    </>
  );
}
