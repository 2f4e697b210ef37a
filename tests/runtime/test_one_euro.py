import numpy as np

from edgepose.runtime.one_euro import OneEuroFilter, OneEuroParams

FPS = 30.0


def _run(filt, track, scores=None, scale=100.0):
    out = []
    for i, kp in enumerate(track):
        out.append(filt(kp, None if scores is None else scores[i], i / FPS, scale=scale))
    return np.stack(out)


def test_still_point_jitter_is_reduced():
    rng = np.random.default_rng(0)
    truth = np.tile(np.array([[50.0, 80.0], [10.0, 20.0]]), (300, 1, 1))
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    out = _run(OneEuroFilter(), noisy)
    err_raw = np.abs(noisy[60:] - truth[60:]).mean()
    err_f = np.abs(out[60:] - truth[60:]).mean()
    assert err_f < err_raw / 1.8


def test_moving_point_follows_with_small_lag():
    # a keypoint moving at 1 person height (100 px) per second, plus noise
    t = np.arange(120) / FPS
    truth = np.stack([100 * t, np.zeros_like(t)], axis=1)[:, None, :]
    rng = np.random.default_rng(1)
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    out = _run(OneEuroFilter(), noisy)
    lag = np.abs(out[30:, 0, 0] - truth[30:, 0, 0]).mean()
    assert lag < 100 / FPS * 2            # within two frames of motion
    # and beta matters: without the speed term the lag is clearly larger
    slow = _run(OneEuroFilter(OneEuroParams(beta=0.0)), noisy)
    assert np.abs(slow[30:, 0, 0] - truth[30:, 0, 0]).mean() > lag * 1.5


def test_scale_invariance():
    rng = np.random.default_rng(2)
    track = np.cumsum(rng.normal(0, 1, (50, 3, 2)), axis=0)
    a = _run(OneEuroFilter(), track, scale=100.0)
    b = _run(OneEuroFilter(), track * 4, scale=400.0)
    np.testing.assert_allclose(a * 4, b, rtol=1e-4, atol=1e-3)


def test_low_score_keypoint_passes_through_and_does_not_drag_state():
    f = OneEuroFilter()
    kp = np.array([[10.0, 10.0], [20.0, 20.0]])
    for i in range(10):
        f(kp, np.array([0.9, 0.9]), i / FPS)
    wild = np.array([[500.0, 500.0], [20.0, 20.0]])
    out = f(wild, np.array([0.05, 0.9]), 10 / FPS)
    np.testing.assert_allclose(out[0], [500, 500])      # raw value returned
    back = f(kp, np.array([0.9, 0.9]), 11 / FPS)
    np.testing.assert_allclose(back[0], [10, 10], atol=1e-3)  # state untouched by the wild guess


def test_keypoint_reappearing_after_long_gap_restarts():
    f = OneEuroFilter(OneEuroParams(max_gap=0.2))
    kp = np.array([[0.0, 0.0]])
    f(kp, np.array([0.9]), 0.0)
    f(kp, np.array([0.0]), 0.1)
    # gone for 1 s, comes back elsewhere: output is the new observation, not a glide
    out = f(np.array([[300.0, 0.0]]), np.array([0.9]), 1.0)
    np.testing.assert_allclose(out[0], [300, 0])
    # short gap: it is smoothed (continues from the old state)
    g = OneEuroFilter(OneEuroParams(max_gap=0.5))
    g(kp, np.array([0.9]), 0.0)
    out = g(np.array([[300.0, 0.0]]), np.array([0.9]), 0.1)
    assert 0 < out[0, 0] < 300


def test_nan_and_repeated_timestamp_are_safe():
    f = OneEuroFilter()
    f(np.array([[1.0, 1.0]]), None, 0.0)
    out = f(np.array([[np.nan, 1.0]]), None, 0.033)
    assert np.isnan(out[0, 0]) or np.isfinite(out[0, 0])
    out = f(np.array([[2.0, 2.0]]), None, 0.033)
    assert np.isfinite(out).all()
    out2 = f(np.array([[9.0, 9.0]]), None, 0.033)
    np.testing.assert_allclose(out2, out)
