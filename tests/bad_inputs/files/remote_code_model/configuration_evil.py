# Test fixture: proves remote code ran by writing $NORMBT_REMOTE_CODE_MARKER; must never execute.
import os

from pathlib import Path

Path(os.environ.get('NORMBT_REMOTE_CODE_MARKER', '/tmp/normbt_remote_code_ran')).write_text('ran')
from transformers import PretrainedConfig


class EvilConfig(PretrainedConfig):
    model_type = 'evil'
