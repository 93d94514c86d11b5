"""Loading the authors' TensorFlow variables, exported to ``.npz`` (shared with KinD).

Retinex-Net's and KinD's authors released TensorFlow checkpoints only. Reading a TF checkpoint
needs TensorFlow, so llbench takes the variables as a NumPy archive that any TensorFlow
installation writes in three lines (merge several checkpoint folders into one archive)::

    import numpy as np, tensorflow as tf
    r = tf.train.load_checkpoint("model/Decom")            # a checkpoint folder or prefix
    np.savez("weights.npz", **{n: r.get_tensor(n) for n in r.get_variable_to_shape_map()})

``--weights weights.npz`` then maps the variable names to this PyTorch layout (``table``:
PyTorch key -> TF name) and permutes the kernels: convolution ``[kh, kw, in, out]`` and
transposed convolution ``[kh, kw, out, in]`` both become PyTorch's ``[dim 3, dim 2, kh, kw]``.
Other variables in the archive (optimizer slots, the other sub-networks) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from llbench.errors import WeightsError


def to_torch(array: np.ndarray) -> torch.Tensor:
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 4:
        a = a.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a))


def to_tf(tensor: torch.Tensor) -> np.ndarray:
    """The inverse of :func:`to_torch` (to write archives in the TF layout, e.g. in tests)."""
    a = tensor.detach().cpu().numpy()
    return np.ascontiguousarray(a.transpose(2, 3, 1, 0)) if a.ndim == 4 else a


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k.removesuffix(":0"): z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable archive is a bad file
        raise WeightsError(f"cannot read TensorFlow variables from {path}: {exc}") from exc


def convert(
    arrays: Mapping[str, np.ndarray], table: Mapping[str, str], source: str = "the archive"
) -> dict[str, torch.Tensor]:
    """PyTorch state dict from TF variables; an error listing every variable that is missing."""
    missing = sorted(tf for tf in table.values() if tf not in arrays)
    if missing:
        shown = ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else "")
        raise WeightsError(
            f"{source} lacks {len(missing)} TensorFlow variable(s) this network needs: {shown} "
            "(export every checkpoint folder of the release into one .npz)"
        )
    return {key: to_torch(arrays[tf]) for key, tf in table.items()}


def retinexnet_table(decom_layers: int = 5) -> dict[str, str]:
    """Retinex-Net: named ``DecomNet`` layers; ``RelightNet``'s unnamed ``tf.layers.conv2d``
    calls get TF's automatic names ``conv2d``, ``conv2d_1`` ... ``conv2d_8`` in creation order."""
    convs = {
        "decom.shallow_feature_extraction": "DecomNet/shallow_feature_extraction",
        **{
            f"decom.activated_layers.{i}": f"DecomNet/activated_layer_{i}"
            for i in range(decom_layers)
        },
        "decom.recon_layer": "DecomNet/recon_layer",
    }
    relight = [
        "conv0",
        "conv1",
        "conv2",
        "conv3",
        "deconv1.conv",
        "deconv2.conv",
        "deconv3.conv",
        "feature_fusion",
        "output",
    ]
    for k, name in enumerate(relight):
        convs[f"relight.{name}"] = "RelightNet/conv2d" + (f"_{k}" if k else "")
    table = {}
    for key, tf in convs.items():
        table[f"{key}.weight"] = f"{tf}/kernel"
        table[f"{key}.bias"] = f"{tf}/bias"
    return table
