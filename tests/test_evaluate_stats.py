"""Tests for the descriptive statistics proposed in evaluate_descriptive_stats.patch."""

import math

import torch

from tvae import evaluate as ev


def test_pixel_entropy_extremes():
    assert ev.pixel_entropy(torch.zeros(2, 784)) < 1e-4
    assert abs(ev.pixel_entropy(torch.full((2, 784), 0.5)) - math.log(2)) < 1e-6


def test_wrap_and_circular_correlation():
    torch.testing.assert_close(ev.wrap_degrees(torch.tensor([0.0, 190.0, -190.0, 360.0, 180.0])),
                               torch.tensor([0.0, -170.0, 170.0, 0.0, 180.0]))
    a = torch.rand(500, generator=torch.Generator().manual_seed(0)) * 360
    assert ev.circular_correlation(a, a + 30) > 0.999
    assert ev.circular_correlation(a, -a) < -0.999
    b = torch.rand(500, generator=torch.Generator().manual_seed(1)) * 360
    assert abs(ev.circular_correlation(a, b)) < 0.15


def test_affine_pose_summary_reads_rotation_and_reflection():
    ang = torch.linspace(-0.5, 0.5, 101)
    u = torch.stack([ang.cos(), -ang.sin(), torch.zeros(101), ang.sin(), ang.cos(), torch.zeros(101)], 1)
    s = ev.affine_pose_summary(u)
    assert abs(s["rotation std (deg)"] - float(torch.rad2deg(ang).std())) < 1e-6
    assert s["reflections (%)"] == 0 and s["shear std"] < 1e-6
    flip = u.clone()
    flip[:, 0] *= -1
    assert ev.affine_pose_summary(flip)["reflections (%)"] == 100
