"""pytest plugin for the nbval runs: wait up to 60 s (not nbval's fixed 5 s) for a cell's
output messages once the cell has finished. On a busy 2-core machine the kernel's output
can lag its reply by more than 5 s, which nbval would report as a failed cell."""
import nbval.plugin

_init = nbval.plugin.IPyNbCell.__init__


def _patient_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.output_timeout = 60


nbval.plugin.IPyNbCell.__init__ = _patient_init
