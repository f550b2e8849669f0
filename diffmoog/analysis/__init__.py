"""Every spectral measurement, in one package that imports nothing from train or match.

- stft: THE STFT (frames-major `[batch, frames, bins]`, cached windows) and the adjoint of its
  framing; stft_native runs its per-bin passes in C (stft_kernels.c).
- spectral_loss: the one multi-resolution STFT loss, with a hand-written backward.
- features: encoder inputs (log-mel, log-STFT) and MFCCs.
- metrics: per-item evaluation metrics (LSD, spectral convergence, MFCC MAE, MRSTFT).
- frechet: Fréchet distance on log-mel statistics (FD-logmel).
- pitch: the pitch tracker.
"""
