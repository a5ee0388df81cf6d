"""A fake clock for the training job tests (no wall-clock dependence)."""


class Clock:
    """A fake monotonic clock advancing by ``tick`` per call."""

    def __init__(self, tick):
        self.t, self.tick = 0.0, tick

    def __call__(self):
        self.t += self.tick
        return self.t
