"""Tuners run by NNI's dispatcher process (configured by class name in the experiment)."""

from __future__ import annotations

from nni.algorithms.hpo.tpe_tuner import TpeTuner


class OrderTolerantTpeTuner(TpeTuner):
    """NNI's TPE tuner, tolerant of a trial's final result arriving after its end event.

    NNI 3.0's ``TpeTuner.trial_end`` forgets the trial's configuration; when the local training
    service reports a trial's end before its final metric (seen with two concurrent trials), the
    dispatcher raises ``KeyError`` in ``receive_trial_result``, dies, and the search stalls until its
    time budget runs out. Here a successful trial's configuration is kept until its result arrives.
    """

    def trial_end(self, parameter_id, success, **kwargs):
        if not success:
            super().trial_end(parameter_id, success, **kwargs)
