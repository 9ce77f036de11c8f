"""The default engine, ``world``: training-free voice conversion on CPU, offline.

WORLD's CheapTrick measures spectral envelopes. The target voice's envelopes come from the profile's
statistics. TD-PSOLA moves the pitch, and an envelope-ratio filter gives the result the target's
timbre. Stages, in order (one function each):

1. **Analyse** (:func:`dsp.analyse`). CheapTrick envelopes of the vocal, resampled to
   :data:`dsp.INTERNAL_SR` (16 kHz), computed with the *given* F0 track (no second pitch tracker).
2. **Encode** (:func:`dsp.encode`). Each log envelope is read on a mel-spaced grid up to
   :data:`dsp.BAND_HZ` (8 kHz) and turned into a mel-cepstrum by a DCT. The source is read through a
   frequency warp ``f -> f / warp``. The warp follows the pitch ratio of the two voices,
   ``warp = (profile median F0 / source median F0) ** warp_exponent`` (exponent 1/4 by default).
   Formants scale roughly with the fourth root of F0 across speakers, so male-to-female raises them
   by about 19 %.
3. **Map** (:class:`mapping.Mapper`). Per-speaker mean/variance normalisation moves the source's cepstra
   into the target's distribution, with separate statistics for voiced and unvoiced frames. For
   voiced frames the result is blended with a k-nearest-neighbour estimate: the mean of the
   ``knn_k`` enrollment frames closest to the normalised source frame on c1..c20, smoothed over
   ~25 ms. The global map keeps the words; the k-NN part brings in the target's formant detail.
   A k-NN estimate alone would copy the enrollment clip rather than the speaker.
4. **Pitch** (:func:`dsp.psola`). TD-PSOLA at the input's own sample rate: two-period Hann grains
   around the source's pitch marks are overlap-added at the target's pitch marks. Both mark
   sequences come from the F0 contours' running phase, which is carried from window to window.
   The grains are read at ``warp`` times normal speed, which moves the formants by ``warp``
   the way a shorter or longer vocal tract would.
5. **Filter** (:func:`dsp.apply_gains`). A zero-phase STFT filter applies the ratio of the mapped envelope
   to the warped source envelope, both at the same cepstral resolution. It is smoothed over
   ~30 ms and faded out in frames near the noise floor, because a time-varying filter on
   background noise is heard as "musical" noise.

Why PSOLA rather than WORLD's own synthesis: on our LibriSpeech sources plain WORLD
analysis/resynthesis already costs ~0.5 DNSMOS OVRL. TD-PSOLA keeps the source's natural excitation
and loses ~0.2 at the same transpositions, is 3-5x cheaper, and reached the same speaker similarity
(see ``bench/engine_dev.py``).

**Bandwidth.** The envelope is converted on 0..8 kHz only. Enrollment audio is often 16 kHz speech,
and the voice's identity lives below 8 kHz. Between :data:`dsp.MERGE_HZ` (6.8..7.6 kHz) the filter
fades to unity, which also hides the anti-alias roll-off of band-limited enrollments. Above that,
a 44.1/48 kHz input keeps its own upper band, pitch-shifted by the same PSOLA, so the converted
vocal keeps its air and sibilance at the planned pitch.

Long input is processed in windows of ``window_s`` seconds with context on both sides and short
linear crossfades, so memory does not grow with the input's length. The source statistics come
from a sparse first pass over the whole input (at most :data:`mapping.MAX_STATS_FRAMES` frames).

The package: :mod:`dsp` (analysis, mel-cepstrum, PSOLA, filter, windows),
:mod:`options` (presets, typed options), :mod:`mapping`
(statistics, the stored profile features, the mapper), :mod:`stream` (live) and
:mod:`engine` (the engine).
"""
