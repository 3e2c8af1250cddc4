"""Brief 5.1: the Hugging Face snippet runs unchanged on an instructgen model directory."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("fixture", ["gpt2_dir", "llama_dir"])
def test_brief_hf_snippet_runs_on_our_directory(request, fixture, capsys):
    model_name = str(request.getfixturevalue(fixture))
    # --- brief section 5.1, verbatim except for model_name ---
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # 加载预训练模型和分词器
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForCausalLM.from_pretrained(model_name)

    # 定义指令和输入
    instruction = "请用中文写一首关于春天的诗。"
    input_text = ""

    # 对指令和输入进行编码
    input_ids = tokenizer.encode(instruction + input_text, return_tensors="pt")

    # 生成输出
    output = model.generate(input_ids, max_length=100, num_return_sequences=1)

    # 解码输出
    generated_text = tokenizer.decode(output[0], skip_special_tokens=True)

    print(generated_text)
    # --- end of the brief's code ---
    assert generated_text.startswith(instruction)
    assert output.shape[1] <= 100
    assert capsys.readouterr().out.startswith(instruction)
