"""Drawing, geometry and validation helpers shared by the point envs.

Conventions shared by every env in `pixelrl.envs`:

- The arena is ``[-1, 1]^2``. ``x`` grows to the right (image columns) and ``y`` grows
  upwards (image rows grow downwards), like a top-down camera.
- Agent, object and distractors are drawn as discs ``size`` pixels wide (`disc_mask`),
  placed on the pixel grid; discs match the circular contact model of the push env. Sprite
  centres move over ``image_size - max_sprite_size`` pixels so that a sprite of the largest
  size is always fully inside the frame, whatever its position.
- Colours are fixed per entity. Each entity colour has at least one channel at 0, below the
  background's 40 in every channel, and background noise only ever adds to the background;
  so noise can never produce an entity colour and entities stay exactly locatable by colour.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Color = tuple[int, int, int]

_BACKGROUND_LEVEL: Final = 40
BACKGROUND_COLOR: Final[Color] = (_BACKGROUND_LEVEL, _BACKGROUND_LEVEL, _BACKGROUND_LEVEL)
"""Dark grey floor; background noise is added on top of it."""
AGENT_COLOR: Final[Color] = (255, 0, 0)
"""Red: the agent (the robot's end effector)."""
OBJECT_COLOR: Final[Color] = (0, 96, 255)
"""Blue: the object to push (``PointPushEnv`` only)."""
GOAL_COLOR: Final[Color] = (0, 255, 0)
"""Green: the hollow-square goal marker, drawn only when ``render_goal=True``."""
DISTRACTOR_COLORS: Final[tuple[Color, ...]] = (
    (255, 255, 0),
    (255, 0, 255),
    (0, 255, 255),
    (255, 128, 0),
    (128, 0, 255),
    (0, 128, 128),
)
"""Yellow, magenta, cyan, orange, purple, teal: distractor ``i`` uses ``DISTRACTOR_COLORS[i % 6]``."""

_ARENA_LOW: Final = -1.0
_ARENA_HIGH: Final = 1.0


def color_array(color: Color) -> npt.NDArray[np.uint8]:
    """Convert an RGB triple to a ``(3,) uint8`` array ready to broadcast into a frame."""
    return np.asarray(color, dtype=np.uint8)


def clip_unit(value: float) -> float:
    """Clip a number to ``[-1, 1]``: the arena along one axis, and the action range."""
    return min(1.0, max(-1.0, value))


def default_agent_size(image_size: int) -> int:
    """Default agent sprite width in pixels: an eighth of the image, at least one pixel."""
    return max(1, image_size // 8)


def check_render_mode(render_mode: object) -> None:
    """Raise ``ValueError`` unless ``render_mode`` is ``"rgb_array"`` or ``None``."""
    if render_mode not in ("rgb_array", None):
        raise ValueError(
            f"render_mode={render_mode!r} is not supported: these envs only render numpy frames. "
            "Pass render_mode='rgb_array' (the default) or render_mode=None if you never call render()."
        )


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None, hint: str = "") -> int:
    """Return ``value`` if it is an int in ``[minimum, maximum]``, else raise a clear error.

    Raises:
        TypeError: ``value`` is not an int (bools and floats are rejected).
        ValueError: ``value`` is out of range; the message ends with ``hint``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__}).")
    if value < minimum or (maximum is not None and value > maximum):
        expected = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}={value} is out of range: expected {expected}. {hint}".rstrip())
    return int(value)


def check_float(
    name: str, value: object, *, low: float, high: float, low_inclusive: bool = False, hint: str = ""
) -> float:
    """Return ``value`` as a float if it lies in ``(low, high]`` (``[low, high]`` if ``low_inclusive``).

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is not finite or out of range; the message ends with ``hint``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    above_low = number >= low if low_inclusive else number > low
    if not (math.isfinite(number) and above_low and number <= high):
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name}={value} is out of range: expected {bracket}{low}, {high}]. {hint}".rstrip())
    return number


def as_action(action: object) -> tuple[float, float]:
    """Validate an action and return it clipped to ``[-1, 1]`` as two floats.

    Raises:
        ValueError: the action does not have shape ``(2,)`` or is not finite.
    """
    array = np.asarray(action, dtype=np.float64)
    if array.shape != (2,):
        raise ValueError(
            f"action must have shape (2,) (a planar displacement direction), got shape {array.shape}. "
            "With a vectorised env, step each env with its own row of the action batch."
        )
    x, y = array.tolist()
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"action must be finite, got {[x, y]}; check the policy for NaNs.")
    return clip_unit(x), clip_unit(y)


def position_options(options: dict[str, Any] | None, allowed: tuple[str, ...]) -> dict[str, npt.NDArray[np.float64]]:
    """Validate ``reset(options=...)`` that pin parts of the initial state.

    Args:
        options: ``None`` or a dict mapping names in ``allowed`` to ``(2,)`` arena positions.
        allowed: Option names the env accepts.

    Returns:
        The options as ``(2,) float64`` arrays, keyed by name.

    Raises:
        ValueError: an unknown key, or a value that is not a ``(2,)`` point inside ``[-1, 1]^2``.
    """
    if not options:
        return {}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown reset option(s) {unknown}; this env accepts {list(allowed)} (all optional).")
    positions = {}
    for key, value in options.items():
        position = np.asarray(value, dtype=np.float64)
        if position.shape != (2,) or not (np.abs(position) <= 1.0).all():
            raise ValueError(f"reset option {key!r} must be an (x, y) point inside the arena [-1, 1]^2, got {value!r}.")
        positions[key] = position.copy()
    return positions


def disc_mask(size: int) -> npt.NDArray[np.bool_]:
    """Pixels of a ``size`` x ``size`` box whose centres lie within ``size / 2`` of the box centre.

    Sizes 1 to 3 give full squares; larger sizes cut the corners. The mask is symmetric, so the
    centroid of a drawn disc is the centre of its box.

    Returns:
        ``(size, size)`` bool mask.
    """
    offsets = np.arange(size) + 0.5 - size / 2.0
    mask: npt.NDArray[np.bool_] = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= (size / 2.0) ** 2 + 1e-9
    return mask


def sparse_reward(achieved_goal: object, desired_goal: object, distance_threshold: float) -> npt.NDArray[np.float32]:
    """Fetch-style sparse reward: ``-1`` if the goals are farther apart than the threshold, else ``0``.

    Args:
        achieved_goal: ``(..., 2)`` float positions.
        desired_goal: ``(..., 2)`` float positions, same shape as ``achieved_goal``.
        distance_threshold: Success radius in arena units.

    Returns:
        ``(...)`` float32 array of rewards in ``{-1, 0}``; 0-d for single goals.

    Raises:
        ValueError: the shapes differ or the last axis is not of size 2.
    """
    achieved = np.asarray(achieved_goal, dtype=np.float64)
    desired = np.asarray(desired_goal, dtype=np.float64)
    if achieved.shape != desired.shape or achieved.shape[-1:] != (2,):
        raise ValueError(
            "compute_reward expects achieved_goal and desired_goal of the same shape (2,) or (B, 2), "
            f"got {achieved.shape} and {desired.shape}."
        )
    distance = np.hypot(achieved[..., 0] - desired[..., 0], achieved[..., 1] - desired[..., 1])
    rewards: npt.NDArray[np.float32] = np.where(distance > distance_threshold, np.float32(-1.0), np.float32(0.0))
    return rewards


class Canvas:
    """Maps arena coordinates to pixels and draws sprites on fresh frames.

    Args:
        image_size: Frame height and width in pixels.
        max_sprite_size: Width of the largest sprite; sprite centres stay this far from the edges
            (half of it on each side) so such sprites are never cropped.
        noise: Background noise amplitude in ``[0, 255]``; see `new_frame`.
    """

    def __init__(self, image_size: int, max_sprite_size: int, noise: int) -> None:
        self.image_size = image_size
        self.noise = noise
        self._offset = max_sprite_size / 2.0
        self._half_span = (image_size - max_sprite_size) / 2.0
        self._background_color = color_array(BACKGROUND_COLOR)
        # The cap saturates noisy pixels at 255 instead of wrapping; it also absorbs float32
        # rounding up to noise + 1 in new_frame.
        self._noise_cap = float(min(255, _BACKGROUND_LEVEL + noise))
        self._background: npt.NDArray[np.uint8] = np.empty((image_size, image_size, 3), dtype=np.uint8)
        self._background[...] = self._background_color
        self._discs: dict[int, npt.NDArray[np.bool_]] = {}

    @property
    def arena_units_per_pixel(self) -> float:
        """Arena distance covered by one pixel of sprite motion."""
        return 1.0 / self._half_span

    def centre(self, x: float, y: float) -> tuple[float, float]:
        """Continuous ``(row, col)`` of a sprite centre, where pixel ``i`` spans ``[i, i + 1)``."""
        return self._offset + (1.0 - y) * self._half_span, self._offset + (x + 1.0) * self._half_span

    def world_to_pixel(self, position: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Expected mean ``(row, col)`` pixel index of a sprite drawn at ``position``.

        Args:
            position: ``(..., 2)`` arena ``(x, y)`` positions.

        Returns:
            ``(..., 2)`` float64 ``(row, col)``; the centroid of the drawn sprite's pixel indices
            is within half a pixel of it in each axis.
        """
        xy = np.asarray(position, dtype=np.float64)
        row = self._offset + (1.0 - xy[..., 1]) * self._half_span - 0.5
        col = self._offset + (xy[..., 0] + 1.0) * self._half_span - 0.5
        return np.stack([row, col], axis=-1)

    def new_frame(self, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
        """Return a fresh ``(H, W, 3) uint8`` background frame.

        With ``noise > 0``, every pixel and channel gets an independent integer drawn uniformly
        from ``[0, noise]`` added to the background colour, saturating at 255. Sprites drawn
        afterwards overwrite it, so noise affects the background only.
        """
        frame: npt.NDArray[np.uint8]
        if self.noise == 0:
            frame = self._background.copy()
            return frame
        # Scaling float32 uniforms is about twice as fast as bounded integer sampling, and the
        # grey background lets every operation use scalars.
        uniform = rng.random(size=self._background.shape, dtype=np.float32)
        uniform *= self.noise + 1
        uniform += _BACKGROUND_LEVEL
        np.minimum(uniform, self._noise_cap, out=uniform)
        frame = uniform.astype(np.uint8)
        return frame

    def _corner(self, x: float, y: float, size: int) -> tuple[int, int]:
        row, col = self.centre(x, y)
        half = size / 2.0
        return math.floor(row - half + 0.5), math.floor(col - half + 0.5)

    def draw_disc(
        self, frame: npt.NDArray[np.uint8], x: float, y: float, size: int, color: npt.NDArray[np.uint8]
    ) -> None:
        """Fill a ``size``-pixel disc (see `disc_mask`) centred on arena point ``(x, y)``, cropped."""
        mask = self._discs.get(size)
        if mask is None:
            mask = self._discs[size] = disc_mask(size)
        top, left = self._corner(x, y, size)
        r0, r1 = max(top, 0), min(top + size, self.image_size)
        c0, c1 = max(left, 0), min(left + size, self.image_size)
        if r0 < r1 and c0 < c1:
            frame[r0:r1, c0:c1][mask[r0 - top : r1 - top, c0 - left : c1 - left]] = color

    def draw_outline(
        self, frame: npt.NDArray[np.uint8], x: float, y: float, size: int, color: npt.NDArray[np.uint8]
    ) -> None:
        """Draw the one-pixel border of a ``size`` x ``size`` square centred on ``(x, y)``, cropped."""
        top, left = self._corner(x, y, size)
        bottom, right = top + size, left + size
        rows = slice(max(top, 0), max(bottom, 0))
        cols = slice(max(left, 0), max(right, 0))
        if 0 <= top < self.image_size:
            frame[top, cols] = color
        if 0 <= bottom - 1 < self.image_size:
            frame[bottom - 1, cols] = color
        if 0 <= left < self.image_size:
            frame[rows, left] = color
        if 0 <= right - 1 < self.image_size:
            frame[rows, right - 1] = color


class Distractors:
    """Blobs that random-walk in the arena and never interact with anything.

    Each step, every distractor moves by ``step_size * U(-1, 1)`` per axis, clipped to the arena.
    They use their own random generator (reseeded on every ``reset``) so adding distractors does
    not change the task's random draws.

    Args:
        count: Number of distractors (may be 0).
        step_size: Largest per-axis move per step, in arena units.
    """

    def __init__(self, count: int, step_size: float) -> None:
        self.count = count
        self.step_size = step_size
        self.positions: npt.NDArray[np.float64] = np.zeros((count, 2), dtype=np.float64)
        self._rng = np.random.default_rng(0)
        self._colors = [color_array(DISTRACTOR_COLORS[i % len(DISTRACTOR_COLORS)]) for i in range(count)]

    def reset(self, rng: np.random.Generator) -> None:
        """Place the distractors uniformly in the arena; ``rng`` drives all their later moves."""
        self._rng = rng
        self.positions = rng.uniform(_ARENA_LOW, _ARENA_HIGH, size=(self.count, 2))

    def step(self) -> None:
        """Move every distractor one random-walk step."""
        if self.count:
            moved = self.positions + self.step_size * self._rng.uniform(-1.0, 1.0, size=(self.count, 2))
            self.positions = np.clip(moved, _ARENA_LOW, _ARENA_HIGH)

    def draw(self, canvas: Canvas, frame: npt.NDArray[np.uint8], size: int) -> None:
        """Draw every distractor as a ``size``-pixel disc in its own colour."""
        for (x, y), color in zip(self.positions.tolist(), self._colors, strict=True):
            canvas.draw_disc(frame, x, y, size, color)
