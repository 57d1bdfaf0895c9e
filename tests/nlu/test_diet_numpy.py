"""bot.nlu.diet_numpy and its patch: DIET's intent prediction in NumPy gives the TensorFlow graph's results (to
float32 rounding) for the trained model, and models it does not implement keep the graph."""

import asyncio
import copy
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from rasa.core.agent import load_agent
from rasa.nlu.classifiers.diet_classifier import DIET, LABEL_KEY, LABEL_SUB_KEY, DIETClassifier
from rasa.shared.constants import DIAGNOSTIC_DATA
from rasa.utils.tensorflow import constants as c
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import RasaModelData
from rasa.utils.tensorflow.models import RasaModel

from bench.phrasings import STEPS
from bot.nlu import diet_numpy, rasa_speedups

rasa_speedups.install()
RASAS_PREDICT = rasa_speedups.ORIGINALS["RasaModel._rasa_predict"]  # Rasa's own tf.function call
RASAS_DIET_PREDICT = rasa_speedups.ORIGINALS["DIETClassifier._predict"]  # model data, batch, then the model
ROOT = Path(__file__).resolve().parents[2]
ODD = ["好", "😀", "🙂🙂🙂", "退" * 300, "衣服穿了一次就开线了，" * 25, "订单202611200000000104 发错货了",
       "12345", "hello, where is my refund?", "I want to return this sweater", "？？？？", "a", "。", "退货 refund 123"]


@pytest.fixture(scope="module")
def loaded():
    """The trained model's agent, its DIETClassifier, and what DIET was loaded from (to build other DIETs)."""
    seen = {}
    original = DIETClassifier._load_model.__func__

    def spy(cls, entity_tag_specs, label_data, config, data_example, model_path, finetune_mode=False):
        seen.update(entity_tag_specs=entity_tag_specs, label_data=label_data, config=config,
                    data_example=data_example)
        return original(cls, entity_tag_specs, label_data, config, data_example, model_path, finetune_mode)

    DIETClassifier._load_model = classmethod(spy)
    try:
        agent = asyncio.run(load_agent(str(ROOT / "models" / "current.tar.gz")))
    finally:
        DIETClassifier._load_model = classmethod(original)
    classifiers = []
    patched = DIETClassifier._predict
    DIETClassifier._predict = lambda self, message: classifiers.append(self) or patched(self, message)
    try:
        asyncio.run(agent.parse_message("你好"))
    finally:
        DIETClassifier._predict = patched
    return agent, classifiers[0], seen


def _texts() -> list:
    from rasa.shared.nlu.training_data.loading import load_data

    training = [m.get("text") for m in load_data(str(ROOT / "data" / "nlu")).training_examples]
    bench = [text for label, phrasings, _ in STEPS if label != "quality reason" for text in phrasings]
    complaints = next(p for label, p, _ in STEPS if label == "quality reason")
    texts = dict.fromkeys(training + bench + list(complaints[::4]) + ODD)
    return [text for text in texts if not text.startswith("/")]  # a payload (/deny) skips DIET


def _batches(agent, monkeypatch, texts, messages: list | None = None) -> list:
    """The batch Rasa's model data and batch generator make for each text, parsed by the agent (each text once);
    `messages` gets the message each batch was made from."""
    batches: list = []
    patched, patched_predict = DIET._rasa_predict, DIETClassifier._predict

    def spy(self, batch_in):
        batches.append((self, batch_in))
        return patched(self, batch_in)

    def rasas_predict(self, message):
        if messages is not None:
            messages.append(message)
        return RASAS_DIET_PREDICT(self, message)

    monkeypatch.setattr(rasa_speedups, "PARSE_CACHE_SIZE", 0)
    monkeypatch.setattr(DIET, "_rasa_predict", spy)
    monkeypatch.setattr(DIETClassifier, "_predict", rasas_predict)  # through the batch, not the direct input

    async def parse_all() -> None:
        for text in texts:
            await agent.parse_message(text)

    asyncio.run(parse_all())
    monkeypatch.setattr(DIET, "_rasa_predict", patched)
    monkeypatch.setattr(DIETClassifier, "_predict", patched_predict)
    return batches


def _same_input(direct: dict, batch: dict) -> None:
    """The direct input equals the batch's for the kinds the prediction reads: the same sparse entries (as
    sets: COO order may differ), values, shapes and lengths."""
    assert set(direct) == set(batch) - {"mask"}
    for kind in direct:
        for a, b in zip(direct[kind], batch[kind], strict=True):
            if isinstance(a, tuple):
                (ai, av, ashape), (bi, bv, bshape) = a, b
                assert ai.dtype == bi.dtype == np.int64 and av.dtype == bv.dtype == np.float32
                assert np.array_equal(ashape, bshape)
                assert sorted(zip(map(tuple, ai), av)) == sorted(zip(map(tuple, bi), bv))
            else:
                assert np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype


def test_the_numpy_path_ranks_intents_as_the_graph_does_for_every_training_text_and_bench_phrasing(
        loaded, monkeypatch):
    """All training examples, every bench phrasing but the complaints, a quarter of the 5,040 complaints and odd
    texts: the same ranking (names and order), every confidence within 1e-5, and the same diagnostic data."""
    agent, diet, _ = loaded
    texts = _texts()
    assert len(texts) > 2500
    batches = _batches(agent, monkeypatch, texts)
    assert len(batches) == len(texts) and all(model is diet.model for model, _ in batches)
    tf_calls = []
    monkeypatch.setattr(RasaModel, "_rasa_predict", lambda self, b: tf_calls.append(1) or RASAS_PREDICT(self, b))
    worst = {"i_scores": 0.0, "text_transformed": 0.0, "attention_weights": 0.0}
    for model, batch_in in batches:
        mine, rasas = DIET._rasa_predict(model, batch_in), RASAS_PREDICT(model, batch_in)
        assert sorted(mine) == sorted(rasas) and sorted(mine[DIAGNOSTIC_DATA]) == sorted(rasas[DIAGNOSTIC_DATA])
        (label, ranking), (their_label, their_ranking) = diet._predict_label(mine), diet._predict_label(rasas)
        assert label["name"] == their_label["name"]
        assert [r["name"] for r in ranking] == [r["name"] for r in their_ranking]
        pairs = [("i_scores", mine["i_scores"], rasas["i_scores"])] + [
            (key, mine[DIAGNOSTIC_DATA][key], rasas[DIAGNOSTIC_DATA][key]) for key in worst if key != "i_scores"]
        for key, a, b in pairs:
            assert a.shape == b.shape and a.dtype == b.dtype == np.float32, key
            worst[key] = max(worst[key], float(np.abs(a - b).max()))
    assert not tf_calls  # the NumPy path answered every time
    print(f"largest differences over {len(batches)} texts: {worst}")
    assert max(worst.values()) <= 1e-5, worst


def test_a_parse_is_the_one_rasas_own_code_gives(loaded, monkeypatch):
    """Whole parse results (intent, ranking, entities, text) with the NumPy path and with Rasa's own prediction."""
    agent, diet, _ = loaded
    monkeypatch.setattr(rasa_speedups, "PARSE_CACHE_SIZE", 0)
    complaints = next(p for label, p, _ in STEPS if label == "quality reason")
    texts = ODD + [t for label, p, _ in STEPS if label != "quality reason" for t in p] + list(complaints[1::50])

    async def parse_all() -> list:
        return [await agent.parse_message(text) for text in texts]

    direct = []
    given_for_message = diet_numpy.NumpyDiet.given_for_message
    monkeypatch.setattr(diet_numpy.NumpyDiet, "given_for_message",
                        lambda self, *a: direct.append(given_for_message(self, *a)) or direct[-1])
    mine = asyncio.run(parse_all())
    assert diet.model.__dict__["_bot_numpy_diet"][1] is not None
    typed = [text for text in texts if not text.startswith("/")]  # a payload (/deny) skips DIET
    assert len(direct) == len(typed) and all(given is not None for given in direct)  # every parse took it
    monkeypatch.delattr(DIET, "_rasa_predict")
    monkeypatch.setattr(RasaModel, "_rasa_predict", RASAS_PREDICT)
    monkeypatch.setattr(DIETClassifier, "_predict", RASAS_DIET_PREDICT)
    rasas = asyncio.run(parse_all())
    assert len(direct) == len(typed)
    for a, b in zip(mine, rasas):
        assert set(a) == set(b)
        assert a["text"] == b["text"] and a["entities"] == b["entities"] and a["intent"]["name"] == b["intent"]["name"]
        assert a["intent"]["confidence"] == pytest.approx(b["intent"]["confidence"], abs=1e-5)
        assert [r["name"] for r in a["intent_ranking"]] == [r["name"] for r in b["intent_ranking"]]
        for x, y in zip(a["intent_ranking"], b["intent_ranking"]):
            assert x["confidence"] == pytest.approx(y["confidence"], abs=1e-5)
    assert {p["intent"]["name"] for p in mine} >= {"greet", "reason_quality", "affirm", "thank", "nlu_fallback"}


def test_a_messages_direct_input_is_the_batch_rasa_makes_of_it(loaded, monkeypatch):
    """The NumPy path's input straight from a message's features equals the batch Rasa's model data and batch
    generator make (every text of the first test), and predicting from either gives the same scores."""
    agent, diet, _ = loaded
    messages: list = []
    batches = _batches(agent, monkeypatch, _texts(), messages)
    assert len(messages) == len(batches) > 2500
    numpy_diet = diet.model.__dict__["_bot_numpy_diet"][1]
    featurizers = diet.component_config[c.FEATURIZERS]
    for message, (_, batch_in) in zip(messages, batches):
        direct = numpy_diet.given_for_message(message, featurizers)
        assert direct is not None, message.get("text")
        _same_input(direct, numpy_diet.given_for_batch(batch_in))
        a, b = numpy_diet.predict_given(direct)["i_scores"], numpy_diet.predict(batch_in)["i_scores"]
        assert np.abs(a - b).max() <= 1e-6


def test_a_message_with_features_the_direct_input_lacks_goes_through_rasas_batch(loaded, monkeypatch):
    """Dense features, or sparse features of another width than the model's: no direct input, and the parse
    goes through Rasa's model data and batch (which reports the mismatch its own way)."""
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.nlu.training_data.message import Message
    import scipy.sparse

    _, diet, _ = loaded
    numpy_diet = diet.model.__dict__["_bot_numpy_diet"][1]
    sequence_width = numpy_diet.signature[c.SEQUENCE][0].units
    sentence_width = numpy_diet.signature[c.SENTENCE][0].units

    def message(*features: Features) -> Message:
        m = Message(data={"text": "开线了"})
        for f in features:
            m.add_features(f)
        return m

    def sparse(kind: str, rows: int, width: int) -> Features:
        return Features(scipy.sparse.coo_matrix(np.ones((rows, width))), kind, "text", "f")

    good = [sparse(c.SEQUENCE, 3, sequence_width), sparse(c.SENTENCE, 1, sentence_width)]
    assert numpy_diet.given_for_message(message(*good), []) is not None
    dense = Features(np.ones((3, 4)), c.SEQUENCE, "text", "d")
    assert numpy_diet.given_for_message(message(*good, dense), []) is None
    assert numpy_diet.given_for_message(message(sparse(c.SEQUENCE, 3, sequence_width + 1), good[1]), []) is None
    assert numpy_diet.given_for_message(message(good[0]), []) is None  # no sentence features
    calls = []
    monkeypatch.setattr(DIETClassifier, "_create_model_data",
                        lambda self, *a, **k: calls.append(1) or RasaModelData())
    assert diet._predict(message(*good, dense)) is None and calls == [1]  # Rasa's way: no data, no prediction


def _fresh_diet(seen: dict, **changes) -> DIET:
    """A DIET built as Rasa loads one, with the trained model's data but another config, its weights from one
    training step: enough to compare two ways of computing its prediction."""
    config = copy.deepcopy(seen["config"])
    config.update(changes)
    example = RasaModelData(label_key=LABEL_KEY, label_sub_key=LABEL_SUB_KEY, data=seen["data_example"])
    tf.random.set_seed(3)
    model = DIET(data_signature=example.get_signature(), label_data=seen["label_data"],
                 entity_tag_specs=seen["entity_tag_specs"], config=config)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.001))
    model.fit(RasaBatchDataGenerator(example, batch_size=1), verbose=False)
    return model


def test_rasas_default_transformer_and_hidden_layers_are_computed_as_the_graph_does(loaded, monkeypatch):
    """Rasa's default DIET transformer (2 layers of 256 units), hidden layers and cosine similarity, on a freshly
    built model: the NumPy path (not this bot's set-up alone) agrees with the graph."""
    agent, _, seen = loaded
    batches = _batches(agent, monkeypatch, ODD + ["衣服穿了一次就开线了，我要退货", "你好", "确认提交"])
    for changes in ({c.NUM_TRANSFORMER_LAYERS: 2, c.TRANSFORMER_SIZE: 256,
                     c.HIDDEN_LAYERS_SIZES: {"text": [64, 32], "label": [16]}},
                    {c.SIMILARITY_TYPE: c.COSINE, c.DROP_RATE_ATTENTION: 0.1}):
        model = _fresh_diet(seen, **changes)
        model._rasa_predict(batches[0][1])  # the first call prepares the model (TensorFlow)
        assert diet_numpy.unsupported_reason(model) is None
        for _, batch_in in batches:
            mine, rasas = model._rasa_predict(batch_in), RASAS_PREDICT(model, batch_in)
            assert model.__dict__["_bot_numpy_diet"][1] is not None
            assert np.abs(mine["i_scores"] - rasas["i_scores"]).max() <= 1e-5
            for key in ("text_transformed", "attention_weights"):
                a, b = mine[DIAGNOSTIC_DATA][key], rasas[DIAGNOSTIC_DATA][key]
                assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4, key


@pytest.mark.parametrize("key, value", [(c.ENTITY_RECOGNITION, True), (c.KEY_RELATIVE_ATTENTION, True),
                                        (c.VALUE_RELATIVE_ATTENTION, True), (c.UNIDIRECTIONAL_ENCODER, True),
                                        (c.MASKED_LM, True), (c.MODEL_CONFIDENCE, "linear"),
                                        (c.SHARE_HIDDEN_LAYERS, True), (c.SIMILARITY_TYPE, "other")])
def test_a_config_the_numpy_path_lacks_is_refused(loaded, monkeypatch, key, value):
    _, diet, _ = loaded
    assert diet_numpy.unsupported_reason(diet.model) is None
    monkeypatch.setitem(diet.model.config, key, value)
    assert key in diet_numpy.unsupported_reason(diet.model)


def test_a_model_with_relative_attention_predicts_with_tensorflow(loaded, monkeypatch):
    """A real DIET with relative attention (not implemented in NumPy): its predictions are the graph's own."""
    agent, _, seen = loaded
    batches = _batches(agent, monkeypatch, ["衣服穿了一次就开线了，我要退货", "你好", "退" * 300])
    model = _fresh_diet(seen, **{c.KEY_RELATIVE_ATTENTION: True, c.VALUE_RELATIVE_ATTENTION: True})
    model._rasa_predict(batches[0][1])
    assert "relative" in diet_numpy.unsupported_reason(model)
    tf_calls = []
    monkeypatch.setattr(RasaModel, "_rasa_predict", lambda self, b: tf_calls.append(1) or RASAS_PREDICT(self, b))
    for _, batch_in in batches:
        mine, rasas = model._rasa_predict(batch_in), RASAS_PREDICT(model, batch_in)
        assert np.array_equal(mine["i_scores"], rasas["i_scores"])
    assert len(tf_calls) == len(batches) and model.__dict__["_bot_numpy_diet"][1] is None


def test_other_models_keep_rasas_prediction():
    """Only DIET itself is patched: TED and ResponseSelector's DIET2DIET (a DIET) are refused by class."""
    from rasa.core.policies.ted_policy import TED
    from rasa.nlu.selectors.response_selector import DIET2DIET

    assert TED._rasa_predict is RasaModel._rasa_predict
    assert DIET._rasa_predict is not RasaModel._rasa_predict
    fake = object.__new__(DIET2DIET)
    assert "DIET2DIET" in diet_numpy.unsupported_reason(fake)


def test_numpys_blas_runs_on_one_thread_in_a_patched_process():
    """Two OpenBLAS threads made a NumPy prediction cost twice its wall time in CPU; the patches limit BLAS to
    one thread for every BLAS library loaded."""
    import threadpoolctl

    blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    assert blas and all(info["num_threads"] == 1 for info in blas)
