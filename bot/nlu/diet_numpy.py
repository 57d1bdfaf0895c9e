"""DIET's intent prediction in NumPy, for a trained model: the same outputs as its TensorFlow graph
(`DIET.batch_predict` in inference mode: `i_scores` and the diagnostic data `text_transformed` and
`attention_weights`), computed from the model's weights, which are read once from its Keras layers.

TensorFlow runs the graph op by op (about 340 ops, each some 20 µs of dispatch on a slow host); the
arithmetic itself is small (one message, a few dozen tokens, 128 units), so NumPy does it in a fraction of
the time. Only the layer set-ups that this bot's model and Rasa's defaults give are implemented;
`unsupported_reason` names what a model has beyond them, and such a model keeps the TensorFlow graph.
Dropout of every kind is left out, as TensorFlow does in inference.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

import numpy as np
from scipy.special import erf

_SQRT_HALF = np.float32(1 / math.sqrt(2))


def gelu(x: np.ndarray) -> np.ndarray:
    """`tf.nn.gelu` with approximate=False (its default): the erf form."""
    return np.float32(0.5) * x * (np.float32(1) + erf(x * _SQRT_HALF))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layer_norm(x: np.ndarray, norm: Tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    gamma, beta, epsilon = norm
    mean = x.mean(axis=-1, keepdims=True)
    variance = np.square(x - mean).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + np.float32(epsilon)) * gamma + beta


Dense = Tuple[np.ndarray, Optional[np.ndarray], bool]  # kernel (mask applied), bias, gelu after it


def dense(x: np.ndarray, layer: Dense) -> np.ndarray:
    kernel, bias, with_gelu = layer
    y = x @ kernel
    if bias is not None:
        y = y + bias
    return gelu(y) if with_gelu else y


class Unsupported(Exception):
    """The model has something the NumPy path does not implement."""


def unsupported_reason(model: Any) -> Optional[Text]:
    """Why the NumPy path cannot stand for this model's graph, or None when it can. Checks the config against
    what is implemented (this bot's DIET and Rasa's defaults), and then the layers themselves."""
    try:
        _check_config(model)
        _read_weights(model)
    except Unsupported as e:
        return str(e)
    return None


def _check_config(model: Any) -> None:
    from rasa.nlu.classifiers.diet_classifier import DIET
    from rasa.utils.tensorflow import constants as c

    if type(model) is not DIET:  # ResponseSelector's DIET2DIET predicts otherwise
        raise Unsupported(f"model class {type(model).__name__}")
    config = model.config
    wanted = {c.INTENT_CLASSIFICATION: True, c.ENTITY_RECOGNITION: False, c.MASKED_LM: False,
              c.KEY_RELATIVE_ATTENTION: False, c.VALUE_RELATIVE_ATTENTION: False, c.UNIDIRECTIONAL_ENCODER: False,
              c.SHARE_HIDDEN_LAYERS: False, c.MODEL_CONFIDENCE: c.SOFTMAX, c.RUN_EAGERLY: False}
    for key, value in wanted.items():
        if config.get(key) != value:
            raise Unsupported(f"{key}={config.get(key)!r}")
    if config.get(c.SIMILARITY_TYPE) not in (c.INNER, c.COSINE):
        raise Unsupported(f"{c.SIMILARITY_TYPE}={config.get(c.SIMILARITY_TYPE)!r}")
    if getattr(model, "_entity_tag_specs", None):
        raise Unsupported("entity tag specs")
    if getattr(model, "all_labels_embed", None) is None:
        raise Unsupported("not prepared for prediction")


def _rcd(layer: Any, gelu_ok: bool = True) -> Dense:
    """A Dense or RandomlyConnectedDense layer's weights; its `call` multiplies the kernel by its mask first."""
    import tensorflow as tf
    from keras import activations

    from rasa.utils.tensorflow.layers import DenseForSparse, RandomlyConnectedDense

    if not isinstance(layer, tf.keras.layers.Dense) or isinstance(layer, DenseForSparse):
        raise Unsupported(f"layer {type(layer).__name__}")
    kernel = layer.kernel.numpy()
    if isinstance(layer, RandomlyConnectedDense) and layer.density < 1.0:
        kernel = kernel * layer.kernel_mask.numpy()
    elif type(layer) not in (tf.keras.layers.Dense, RandomlyConnectedDense):
        raise Unsupported(f"layer {type(layer).__name__}")
    if layer.activation is tf.nn.gelu and gelu_ok:
        with_gelu = True
    elif layer.activation in (None, activations.linear):
        with_gelu = False
    else:
        raise Unsupported(f"activation {layer.activation!r}")
    bias = layer.bias.numpy() if layer.use_bias else None
    return kernel.astype(np.float32), None if bias is None else bias.astype(np.float32), with_gelu


def _ffnn(layer: Any) -> List[Dense]:
    import tensorflow as tf

    from rasa.utils.tensorflow.layers import Ffnn

    if type(layer) is not Ffnn:
        raise Unsupported(f"ffnn {type(layer).__name__}")
    out = []
    for sub in layer._ffn_layers:
        if type(sub) is tf.keras.layers.Dropout:
            continue  # inference
        out.append(_rcd(sub))
    return out


def _norm(layer: Any) -> Tuple[np.ndarray, np.ndarray, float]:
    import tensorflow as tf

    if type(layer) is not tf.keras.layers.LayerNormalization or list(layer.axis) not in ([-1], [2]) \
            or not (layer.center and layer.scale):
        raise Unsupported("layer normalization")
    return layer.gamma.numpy(), layer.beta.numpy(), float(layer.epsilon)


def _sparse_dense(layer: Any, signature: Sequence[Any]) -> Dict[Text, Any]:
    """ConcatenateSparseDenseFeatures: each sparse feature through DenseForSparse, dense ones as they are."""
    import tensorflow as tf

    from rasa.utils.tensorflow.layers import DenseForSparse, SparseDropout
    from rasa.utils.tensorflow.rasa_layers import ConcatenateSparseDenseFeatures

    if type(layer) is not ConcatenateSparseDenseFeatures:
        raise Unsupported(f"feature layer {type(layer).__name__}")
    to_dense = None
    for name, sub in layer._tf_layers.items():
        if name == layer.SPARSE_TO_DENSE:
            if type(sub) is not DenseForSparse or sub.activation not in (None, tf.keras.activations.linear):
                raise Unsupported("sparse to dense layer")
            to_dense = (sub.kernel.numpy().astype(np.float32),
                        sub.bias.numpy().astype(np.float32) if sub.use_bias else None)
        elif not ((name == layer.SPARSE_DROPOUT and type(sub) is SparseDropout)
                  or (name == layer.DENSE_DROPOUT and type(sub) is tf.keras.layers.Dropout)):
            raise Unsupported(f"feature layer part {name}")
    if any(s.is_sparse for s in signature) and to_dense is None:
        raise Unsupported("sparse features without their dense layer")
    return {"to_dense": to_dense}


def _read_weights(model: Any) -> Dict[Text, Any]:
    from rasa.shared.nlu.constants import TEXT
    from rasa.utils.tensorflow.constants import LABEL, SENTENCE, SEQUENCE, SEQUENCE_LENGTH
    from rasa.utils.tensorflow.layers import Embed, SingleLabelDotProductLoss
    from rasa.utils.tensorflow.rasa_layers import RasaFeatureCombiningLayer, RasaSequenceLayer
    from rasa.utils.tensorflow.transformer import MultiHeadAttention, TransformerEncoder, TransformerEncoderLayer

    signature = model.predict_data_signature
    if list(signature) != [TEXT] or set(signature[TEXT]) - {"mask", SENTENCE, SEQUENCE, SEQUENCE_LENGTH}:
        raise Unsupported(f"prediction signature {list(signature)}")
    if not signature[TEXT].get(SEQUENCE) or not signature[TEXT].get(SEQUENCE_LENGTH):
        raise Unsupported("no sequence features")
    sequence_layer = model._tf_layers[f"sequence_layer.{TEXT}"]
    if type(sequence_layer) is not RasaSequenceLayer or sequence_layer._enables_mlm:
        raise Unsupported("sequence layer")
    combining = sequence_layer._tf_layers[sequence_layer.FEATURE_COMBINING]
    if type(combining) is not RasaFeatureCombiningLayer:
        raise Unsupported("feature combining layer")
    present = combining._feature_types_present
    if not present[SEQUENCE] or bool(present[SENTENCE]) != bool(signature[TEXT].get(SENTENCE)):
        raise Unsupported("feature types")
    weights: Dict[Text, Any] = {"signature": [(key, list(signature[TEXT][key])) for key in signature[TEXT]]}
    for kind in (SEQUENCE, SENTENCE):
        if present[kind]:
            weights[kind] = _sparse_dense(combining._tf_layers[f"sparse_dense.{kind}"], signature[TEXT][kind])
            unify = combining._tf_layers.get(f"unify_dims_before_seq_sent_concat.{kind}")
            weights[f"unify.{kind}"] = _ffnn(unify) if unify is not None else []
    weights["ffnn"] = _ffnn(sequence_layer._tf_layers[sequence_layer.FFNN])
    weights["layers"] = []
    if sequence_layer._has_transformer:
        encoder = sequence_layer._tf_layers[sequence_layer.TRANSFORMER]
        if type(encoder) is not TransformerEncoder or encoder.unidirectional:
            raise Unsupported("transformer")
        weights["units"] = encoder.units
        weights["embedding"] = _rcd(encoder._embedding)
        weights["angles"] = np.asarray(encoder._angles).astype(np.float32)  # as TF converts it, to float32
        for layer in encoder._enc_layers:
            mha = layer._mha
            if type(layer) is not TransformerEncoderLayer or type(mha) is not MultiHeadAttention \
                    or mha.use_key_relative_position or mha.use_value_relative_position or mha.unidirectional:
                raise Unsupported("transformer layer")
            ffn = layer._ffn_layers
            if len(ffn) != 5:
                raise Unsupported("transformer feed-forward")
            weights["layers"].append({
                "norm": _norm(layer._layer_norm), "heads": mha.num_heads, "depth": mha._depth,
                "q": _rcd(mha._query_dense_layer, False), "k": _rcd(mha._key_dense_layer, False),
                "v": _rcd(mha._value_dense_layer, False), "o": _rcd(mha._output_dense_layer, False),
                "ffn_norm": _norm(ffn[0]), "ffn_in": _rcd(ffn[1]), "ffn_out": _rcd(ffn[3], False)})
        weights["final_norm"] = _norm(encoder._layer_norm)
    embed = model._tf_layers[f"embed.{TEXT}"]
    loss = model._tf_layers[f"loss.{LABEL}"]
    if type(embed) is not Embed or type(loss) is not SingleLabelDotProductLoss:
        raise Unsupported("embedding or loss layer")
    weights["embed"] = _rcd(embed._dense, False)
    weights["similarity"] = loss.similarity_type
    weights["softmax"] = loss.model_confidence
    # The labels' embeddings: the graph uses this tensor, computed once by `prepare_for_predict`.
    weights["labels"] = np.asarray(model.all_labels_embed.numpy(), dtype=np.float32)
    return weights


class NumpyDiet:
    """DIET's `batch_predict` for one trained model, in NumPy."""

    def __init__(self, model: Any) -> None:
        _check_config(model)
        self.w = _read_weights(model)
        self.signature = dict(self.w["signature"])  # per kind of feature, as the batch lists them
        self.positions = np.zeros((0, self.w.get("units", 0)), dtype=np.float32)

    def _position_encoding(self, length: int) -> np.ndarray:
        if length > len(self.positions):  # grown as longer texts come, as TF computes it
            length_needed = max(length, 2 * len(self.positions), 64)
            angle = np.arange(length_needed, dtype=np.float32)[:, None] * self.w["angles"]
            encoding = np.empty_like(angle)
            encoding[:, 0::2] = np.sin(angle[:, 0::2])
            encoding[:, 1::2] = np.cos(angle[:, 1::2])
            self.positions = encoding
        return self.positions[:length]

    def _features(self, parts: Dict[Text, Any], arrays: List[Any], signature: Sequence[Any]) -> np.ndarray:
        out = []
        for feature, value in zip(signature, arrays):
            if feature.is_sparse:
                indices, values, shape = value
                kernel, bias = parts["to_dense"]
                batch, length = int(shape[0]), int(shape[1])
                dense_out = np.zeros((batch * length, kernel.shape[1]), dtype=np.float32)
                if len(values):
                    rows = indices[:, 0] * length + indices[:, 1]
                    contributions = kernel[indices[:, -1]] * values.astype(np.float32)[:, None]
                    if not np.all(rows[1:] >= rows[:-1]):  # one sum per row (np.add.at is slow)
                        order = np.argsort(rows, kind="stable")
                        rows, contributions = rows[order], contributions[order]
                    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
                    dense_out[rows[starts]] = np.add.reduceat(contributions, starts, axis=0)
                dense_out = dense_out.reshape(batch, length, -1)
                if bias is not None:
                    dense_out = dense_out + bias
                out.append(dense_out)
            else:
                out.append(np.asarray(value, dtype=np.float32))
        return out[0] if len(out) == 1 else np.concatenate(out, axis=-1)

    def predict(self, batch_in: Sequence[Any]) -> Dict[Text, Any]:
        """The outputs for a batch as Rasa's batch generator makes it (RasaBatchDataGenerator.prepare_batch)."""
        return self.predict_given(self.given_for_batch(batch_in))

    def given_for_batch(self, batch_in: Sequence[Any]) -> Dict[Text, List[Any]]:
        """A batch's arrays by kind of feature; a sparse feature is its (indices, values, shape)."""
        given: Dict[Text, List[Any]] = {}
        i = 0
        for key, signature in self.w["signature"]:  # as RasaModel.batch_to_model_data_format reads the batch
            for feature in signature:
                if feature.is_sparse:
                    given.setdefault(key, []).append(tuple(batch_in[i:i + 3]))
                    i += 3
                else:
                    given.setdefault(key, []).append(batch_in[i])
                    i += 1
        return given

    def given_for_message(self, message: Any, featurizers: List[Text]) -> Optional[Dict[Text, List[Any]]]:
        """The model's input for one message, straight from its features: what Rasa's model data and batch
        generator make of them (DIETClassifier._create_model_data, then prepare_batch: each kind's sparse
        features of all featurizers side by side, as COO indices, float32 values and shape, and the number of
        tokens), without building either. None when the message's features are not just one sparse matrix per
        kind of the model's width: Rasa's own way then."""
        from rasa.shared.nlu.constants import TEXT
        from rasa.utils.tensorflow.constants import SENTENCE, SEQUENCE, SEQUENCE_LENGTH

        if any(features is not None for features in message.get_dense_features(TEXT, featurizers)):
            return None
        sequence, sentence = message.get_sparse_features(TEXT, featurizers)
        given: Dict[Text, List[Any]] = {}
        for kind, features in ((SEQUENCE, sequence), (SENTENCE, sentence)):
            signature = self.signature.get(kind)
            if not signature:
                if features is not None:
                    return None
                continue
            if features is None or len(signature) != 1 or not signature[0].is_sparse:
                return None
            matrix = features.features.tocoo()
            if matrix.shape[1] != signature[0].units:
                return None
            indices = np.stack([np.zeros_like(matrix.row), matrix.row, matrix.col], axis=1).astype(np.int64)
            given[kind] = [(indices, matrix.data.astype(np.float32), np.array((1, *matrix.shape), np.int64))]
        given[SEQUENCE_LENGTH] = [np.array([sequence.features.shape[0]], dtype=np.float32)]  # as the batch has it
        return given

    def predict_given(self, given: Dict[Text, List[Any]]) -> Dict[Text, Any]:
        """The outputs for the model's input by kind of feature (`predict`, `given_for_message`)."""
        from rasa.utils.tensorflow.constants import COSINE, SENTENCE, SEQUENCE, SEQUENCE_LENGTH, SOFTMAX

        w = self.w
        lengths = np.asarray(given[SEQUENCE_LENGTH][0]).astype(np.int64)
        sequence = self._features(w[SEQUENCE], given[SEQUENCE], self.signature[SEQUENCE])
        batch, length = sequence.shape[:2]
        sequence = sequence * (np.arange(length)[None, :] < lengths[:, None])[:, :, None]
        for layer in w[f"unify.{SEQUENCE}"]:
            sequence = dense(sequence, layer)
        if SENTENCE in w:
            sentence = self._features(w[SENTENCE], given[SENTENCE], self.signature[SENTENCE])
            for layer in w[f"unify.{SENTENCE}"]:
                sentence = dense(sentence, layer)
            # The sentence vector goes right after each text's last token.
            x = np.concatenate([sequence, np.zeros((batch, 1, sequence.shape[2]), np.float32)], axis=1)
            x[np.arange(batch), lengths] += sentence[:, 0]
            combined_lengths = lengths + 1
        else:
            x, combined_lengths = sequence, lengths
        for layer in w["ffnn"]:
            x = dense(x, layer)
        steps = x.shape[1]
        if w["layers"]:
            x = dense(x, w["embedding"]) * np.float32(math.sqrt(w["units"]))
            x = x + self._position_encoding(steps)[None]
            pad = (np.arange(steps)[None, :] >= combined_lengths[:, None]).astype(np.float32)
            pad = pad[:, None, None, :] * np.float32(-1e9)
            all_weights = []
            for layer in w["layers"]:
                x_norm = layer_norm(x, layer["norm"])
                heads, depth = layer["heads"], layer["depth"]

                def split(t: np.ndarray) -> np.ndarray:
                    return t.reshape(batch, steps, heads, depth).transpose(0, 2, 1, 3)

                q, k, v = (split(dense(x_norm, layer[name])) for name in ("q", "k", "v"))
                logits = (q @ k.transpose(0, 1, 3, 2)) / np.float32(math.sqrt(depth)) + pad
                attention = softmax(logits)
                all_weights.append(attention)
                heads_out = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, steps, heads * depth)
                x = x + dense(heads_out, layer["o"])
                ffn = dense(dense(layer_norm(x, layer["ffn_norm"]), layer["ffn_in"]), layer["ffn_out"])
                x = x + ffn
            x = gelu(layer_norm(x, w["final_norm"]))
            attention_weights = np.stack(all_weights, axis=1)
        else:
            attention_weights = None  # the graph's empty tensor, which Rasa turns into None
        last = np.maximum(0, combined_lengths - 1)
        sentence_embed = dense(x[np.arange(batch), last], w["embed"])
        labels = w["labels"]
        if w["similarity"] == COSINE:
            sentence_embed = sentence_embed / np.sqrt(np.maximum(
                np.square(sentence_embed).sum(-1, keepdims=True), np.float32(1e-12)))
            labels = labels / np.sqrt(np.maximum(np.square(labels).sum(-1, keepdims=True), np.float32(1e-12)))
        similarities = (sentence_embed[:, None, :] * labels[None, :, :]).sum(-1)
        scores = softmax(similarities) if w["softmax"] == SOFTMAX else similarities
        return {"diagnostic_data": {"attention_weights": attention_weights, "text_transformed": x},
                "i_scores": scores.astype(np.float32)}
