"""Model-directory files: publishing a checkpoint links its weights, training writes them once."""

from __future__ import annotations

import json
import os

import pytest
import torch

from instructgen.model import checkpoint, model_dir
from instructgen.train.loop import TrainConfig
from instructgen.train.state import TRAINER_FILES

from .conftest import make_model_dir
from .test_finetune import write_data


def fake_checkpoint(path):
    path.mkdir(parents=True)
    model_dir.write_safetensors({"w": torch.arange(6.0)}, path / model_dir.WEIGHTS_FILE)
    model_dir.write_json(path / model_dir.CONFIG_FILE, {"model_type": "gpt2"})
    model_dir.write_provenance(path, {"history": [{"stage": "init"}]})
    for name in TRAINER_FILES:
        (path / name).write_text("trainer")
    return path


def test_publish_links_weights_and_copies_the_rest(tmp_path):
    ckpt = fake_checkpoint(tmp_path / "out" / "checkpoints" / "step_0000001")
    out = tmp_path / "out"
    (out / "metrics.jsonl").write_text("{}\n")
    model_dir.publish(ckpt, out, provenance={"published_step": 1}, exclude=TRAINER_FILES)

    weights = out / model_dir.WEIGHTS_FILE
    assert weights.stat().st_ino == (ckpt / model_dir.WEIGHTS_FILE).stat().st_ino
    assert weights.stat().st_mode & 0o777 == (out / model_dir.CONFIG_FILE).stat().st_mode & 0o777
    config = out / model_dir.CONFIG_FILE
    assert config.read_bytes() == (ckpt / model_dir.CONFIG_FILE).read_bytes()
    assert config.stat().st_ino != (ckpt / model_dir.CONFIG_FILE).stat().st_ino
    assert model_dir.read_provenance(out) == {"history": [{"stage": "init"}], "published_step": 1}
    assert not any((out / name).exists() for name in TRAINER_FILES)
    assert (out / "metrics.jsonl").is_file()  # out_dir's other files stay


def test_publish_copies_where_the_filesystem_cannot_link(tmp_path, monkeypatch):
    ckpt = fake_checkpoint(tmp_path / "ckpt")

    def no_links(src, dst):
        raise OSError("EXDEV")

    monkeypatch.setattr(model_dir.os, "link", no_links)
    model_dir.publish(ckpt, tmp_path / "out", provenance={})
    weights = tmp_path / "out" / model_dir.WEIGHTS_FILE
    assert weights.read_bytes() == (ckpt / model_dir.WEIGHTS_FILE).read_bytes()
    assert weights.stat().st_ino != (ckpt / model_dir.WEIGHTS_FILE).stat().st_ino


def count_weight_writes(monkeypatch) -> list:
    calls = []
    original = checkpoint.write_safetensors

    def counted(tensors, path, **kwargs):
        calls.append(path)
        original(tensors, path, **kwargs)

    monkeypatch.setattr(checkpoint, "write_safetensors", counted)
    return calls


@pytest.mark.parametrize("recipe", ["finetune", "pretrain"])
def test_training_writes_the_weights_once_per_checkpoint(
    recipe, tokenizer_dir, tmp_path, monkeypatch
):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "gpt2")
    out = tmp_path / "out"
    config = dict(max_steps=3, save_every=2, eval_every=3, batch_size=2, seq_len=48, keep_last=5)
    calls = count_weight_writes(monkeypatch)
    if recipe == "finetune":
        from instructgen.train.sft import SFTOptions, finetune

        data = str(write_data(tmp_path / "train.jsonl", n=16))
        finetune(base, data, out, TrainConfig(**config), SFTOptions(), show_progress=False)
    else:
        from instructgen.train.pretrain import pretrain

        pretrain(base, None, out, TrainConfig(objective="copy", **config), show_progress=False)
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert steps == ["step_0000002", "step_0000003"]
    assert len(calls) == len(steps)  # one write per checkpoint, none to publish
    published = json.loads((out / model_dir.PROVENANCE_FILE).read_text())["published_step"]
    chosen = out / "checkpoints" / f"step_{published:07d}" / model_dir.WEIGHTS_FILE
    assert os.path.samefile(out / model_dir.WEIGHTS_FILE, chosen)
    assert checkpoint.load_model(out).config == checkpoint.load_model(base).config


def test_check_model_dir_names_what_is_missing(gpt2_dir, tmp_path):
    import shutil

    from instructgen.errors import ModelDirError

    assert checkpoint.check_model_dir(gpt2_dir) == checkpoint.load_config(gpt2_dir)
    no_tokenizer = shutil.copytree(gpt2_dir, tmp_path / "no_tokenizer")
    (no_tokenizer / model_dir.TOKENIZER_FILE).unlink()
    with pytest.raises(ModelDirError, match="tokenizer"):
        checkpoint.check_model_dir(no_tokenizer)
    truncated = shutil.copytree(gpt2_dir, tmp_path / "truncated")
    weights = truncated / model_dir.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelDirError, match="truncated"):
        checkpoint.check_model_dir(truncated)


def test_safetensors_are_read_into_memory_of_their_own(tmp_path):
    """load_safetensors gives what safetensors gives, every dtype and shape, in owned memory (no
    file mapping that would count the weights twice), and names a truncated file."""
    from safetensors.torch import load_file, save_file

    tensors = {
        "f32": torch.randn(3, 5),
        "bf16": torch.randn(4, 2).to(torch.bfloat16),
        "i8": torch.randint(-128, 127, (7,), dtype=torch.int8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "flags": torch.tensor([True, False]),
    }
    file = tmp_path / "w.safetensors"
    save_file(tensors, str(file))
    ours, theirs = model_dir.load_safetensors(file), load_file(str(file))
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and torch.equal(ours[name], tensor), name
    file.write_bytes(file.read_bytes()[:-4])
    with pytest.raises(model_dir.ModelDirError, match="truncated"):
        model_dir.load_safetensors(file)


def test_gpt2_weights_load_contiguous_in_the_memory_they_were_read_into(gpt2_dir):
    """GPT-2's Conv1D weights arrive transposed; they are laid out in place, W_q, W_k, W_v end
    to end in the one tensor c_attn was read into (the engine fuses them without a copy)."""
    model = checkpoint.load_model(gpt2_dir)
    assert all(p.is_contiguous() for p in model.parameters())
    reference = checkpoint.from_hf_state_dict(
        model.config, model_dir.read_weights(gpt2_dir), source=str(gpt2_dir)
    )
    for name, tensor in model.state_dict().items():
        if name in reference:
            assert torch.equal(tensor, reference[name]), name
    a = model.blocks[1].attn
    assert a.W_q.weight.untyped_storage().data_ptr() == a.W_v.weight.untyped_storage().data_ptr()
    assert a.W_v.weight.data_ptr() == a.W_k.weight.data_ptr() + a.W_k.weight.nbytes
