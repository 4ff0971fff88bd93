// Live refresh: run `tick` now and every `ms` after the previous run ended, until stopped.
// A failed tick shows its error in `status` and the loop goes on (the server may be restarting).

export function every(ms, tick, onError) {
  let timer = null;
  let stopped = false;
  const loop = async () => {
    try {
      await tick();
    } catch (e) {
      if (onError) onError(e);
    }
    if (!stopped) timer = setTimeout(loop, document.hidden ? ms * 5 : ms);
  };
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
