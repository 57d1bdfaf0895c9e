"""Given a buyer's message, when entities are extracted, then these entities come out.

Run from the repository root with the Rasa environment:
    /tmp/envs/rasa/bin/python -m pytest tests/nlu/test_entities.py
"""

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.entities import ShopEntityExtractor, cn_to_int, extract, normalize

# (given message, then [(entity, value, the characters it covers in the message)]) – in order.
CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    # order and tracking numbers, couriers
    ("我的订单号是202311250012345678", [("order_no", "202311250012345678", "202311250012345678")]),
    ("订单２０２３１１２５００１２３４５６７８", [("order_no", "202311250012345678", "２０２３１１２５００１２３４５６７８")]),
    ("顺丰SF1234567890123", [("courier", "SF", "顺丰"), ("tracking_no", "SF1234567890123", "SF1234567890123")]),
    ("单号sf1234567890123", [("tracking_no", "SF1234567890123", "sf1234567890123"),
                            ("courier", "SF", "sf1234567890123")]),
    ("快递单号75123456789012", [("tracking_no", "75123456789012", "75123456789012"),
                              ("courier", "ZTO", "75123456789012")]),
    ("圆通快递 YT1234567890123", [("courier", "YTO", "圆通快递"), ("tracking_no", "YT1234567890123", "YT1234567890123")]),
    ("EA123456789CN", [("tracking_no", "EA123456789CN", "EA123456789CN"), ("courier", "EMS", "EA123456789CN")]),
    ("邮政的单号1234567890123", [("courier", "EMS", "邮政"), ("tracking_no", "1234567890123", "1234567890123")]),
    ("4312345678901是韵达吗", [("tracking_no", "4312345678901", "4312345678901"), ("courier", "YUNDA", "韵达")]),
    ("单号4312345678901", [("tracking_no", "4312345678901", "4312345678901"),
                         ("courier", "YUNDA", "4312345678901")]),
    ("中通 4312345678901", [("courier", "ZTO", "中通"), ("tracking_no", "4312345678901", "4312345678901")]),
    ("顺风快递还没到", [("courier", "SF", "顺风")]),  # common typo of 顺丰
    ("ems到了吗", [("courier", "EMS", "ems")]),
    ("祝你一路顺风", []),
    # amounts, in fen
    ("59元", [("amount", "5900", "59元")]),
    ("59.9块", [("amount", "5990", "59.9块")]),
    ("¥120", [("amount", "12000", "¥120")]),
    ("￥120元", [("amount", "12000", "￥120元")]),
    ("一百二十块", [("amount", "12000", "一百二十块")]),
    ("三十五块五", [("amount", "3550", "三十五块五")]),
    ("运费2块5毛", [("amount", "250", "2块5毛")]),
    ("退我三十五点五元", [("amount", "3550", "三十五点五元")]),
    ("10元2件", [("amount", "1000", "10元"), ("quantity", "2", "2件")]),
    # quantities
    ("两件", [("quantity", "2", "两件")]),
    ("2件", [("quantity", "2", "2件")]),
    ("买了一个", [("quantity", "1", "一个")]),
    ("3双", [("quantity", "3", "3双")]),
    ("一条", [("quantity", "1", "一条")]),
    ("就一件", [("quantity", "1", "一件")]),
    ("三盒", [("quantity", "3", "三盒")]),
    ("十二件", [("quantity", "12", "十二件")]),
    ("兩件", [("quantity", "2", "兩件")]),  # traditional 兩 typed for 两
    ("第一件有问题", []),
    ("万一件坏了呢", []),
    # sizes and fit
    ("M码", [("size", "M", "M码")]),
    ("要xl的", [("size", "XL", "xl")]),
    ("XXL码", [("size", "2XL", "XXL码")]),
    ("3XL", [("size", "3XL", "3XL")]),
    ("4xl号", [("size", "4XL", "4xl号")]),
    ("均码", [("size", "均码", "均码")]),
    ("38码", [("size", "38", "38码")]),
    ("三十八码", [("size", "38", "三十八码")]),
    ("偏大一码", [("size_fit", "too_big", "偏大一码")]),
    ("偏小一码", [("size_fit", "too_small", "偏小一码")]),
    ("鞋子有点紧", [("size_fit", "too_small", "有点紧")]),
    ("衣服太大了", [("size_fit", "too_big", "太大了")]),
    ("买小了", [("size_fit", "too_small", "小了")]),
    ("这个很紧急", []),
    # colours
    ("我要黑色的", [("color", "黑色", "黑色")]),
    ("要白的", [("color", "白色", "白")]),
    ("酒红色", [("color", "酒红色", "酒红色")]),
    ("米白", [("color", "米白色", "米白")]),
    ("藏青的外套", [("color", "藏青色", "藏青")]),
    ("卡其色裤子", [("color", "卡其色", "卡其色")]),
    ("浅灰", [("color", "浅灰色", "浅灰")]),
    ("明白了", []),
    ("金额不对", []),
    # durations
    ("3天", [("duration", "P3D", "3天")]),
    ("三天", [("duration", "P3D", "三天")]),
    ("72小时", [("duration", "PT72H", "72小时")]),
    ("两周", [("duration", "P14D", "两周")]),
    ("一个月", [("duration", "P1M", "一个月")]),
    ("半个月", [("duration", "P15D", "半个月")]),
    ("三月份买的", []),
    # resolutions
    ("我要退货退款", [("resolution", "return_refund", "退货退款")]),
    ("仅退款", [("resolution", "refund_only", "仅退款")]),
    ("把钱退钱给我", [("resolution", "refund_only", "退钱")]),
    ("换货", [("resolution", "exchange", "换货")]),
    ("换一件", [("resolution", "exchange", "换一件")]),
    ("换个码", [("resolution", "exchange", "换个码")]),
    ("换大一码", [("resolution", "exchange", "换大一码")]),
    ("不想退货只要退款", [("resolution", "refund_only", "不想退货"), ("resolution", "refund_only", "退款")]),
    ("退货后多久退款", [("resolution", "return_refund", "退货")]),
    ("退货地址发我", []),
    ("为什么不退款", []),
    # accounts and phones
    ("支付宝13812345678", [("account", "alipay:13812345678", "13812345678")]),
    ("支付宝账号：abc@qq.com", [("account", "alipay:abc@qq.com", "abc@qq.com")]),
    ("退到银行卡6222 0212 3456 7890 123", [("account", "bank:6222021234567890123", "6222 0212 3456 7890 123")]),
    ("银行卡号202311250012345678", [("account", "bank:202311250012345678", "202311250012345678")]),
    ("订单号和卡号：202311250012345678", [("order_no", "202311250012345678", "202311250012345678")]),
    ("我电话13812345678", [("phone", "13812345678", "13812345678")]),
    # mixed messages, emoji, full width
    ("我买的M你发了L，两件都不对", [("size", "M", "M"), ("size", "L", "L"), ("quantity", "2", "两件")]),
    ("鞋子偏小一码，想换42码", [("size_fit", "too_small", "偏小一码"), ("size", "42", "42码")]),
    ("两件XL的黑色卫衣，退货退款，退59.9元到支付宝13812345678", [
        ("quantity", "2", "两件"), ("size", "XL", "XL"), ("color", "黑色", "黑色"),
        ("resolution", "return_refund", "退货退款"),
        ("amount", "5990", "59.9元"), ("account", "alipay:13812345678", "13812345678"),
    ]),
    ("我要退货😭😭 顺丰SF1234567890123", [("resolution", "return_refund", "退货"), ("courier", "SF", "顺丰"),
                                        ("tracking_no", "SF1234567890123", "SF1234567890123")]),
    ("ＸＬ码两件", [("size", "XL", "ＸＬ码"), ("quantity", "2", "两件")]),
    ("３天内发货🙏", [("duration", "P3D", "３天")]),
    # nothing to find
    ("你好", []),
    ("谢谢亲😊", []),
    ("", []),
    ("   ", []),
]


@pytest.mark.parametrize(("given", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_extract(given: str, expected: list[tuple[str, str, str]]) -> None:
    # when
    entities = extract(given)
    # then
    assert [(e["entity"], e["value"], given[e["start"]:e["end"]]) for e in entities] == expected


def test_entity_dicts_have_the_rasa_shape() -> None:
    # given / when
    (entity,) = extract("退59元")
    # then
    assert entity == {"entity": "amount", "value": "5900", "start": 1, "end": 4,
                      "confidence": 1.0, "extractor": "ShopEntityExtractor"}


def test_no_two_entities_share_characters_except_a_derived_courier() -> None:
    # given a message dense with overlapping candidates
    given = "换一件一个月内退款100元，订单202311250012345678，单号YT1234567890123，偏大一码的XXL"
    # when
    entities = [e for e in extract(given) if not (e["entity"] == "courier" and given[e["start"]:e["end"]].isascii())]
    # then
    covered = [i for e in entities for i in range(e["start"], e["end"])]
    assert len(covered) == len(set(covered))


@pytest.mark.parametrize(("numeral", "value"), [
    ("十", 10), ("十二", 12), ("二十", 20), ("一百零五", 105), ("一百二", 120), ("两千五", 2500),
    ("两万五", 25000), ("三万零八", 30008), ("42", 42), ("一二", None), ("好", None), ("万一", None),
])
def test_chinese_numerals(numeral: str, value: int | None) -> None:
    assert cn_to_int(numeral) == value


def test_normalize_keeps_offsets() -> None:
    assert normalize("ＸＬ码，２件　￥５９") == "XL码,2件 ¥59"


def test_component_appends_entities_to_a_message(tmp_path: Path) -> None:
    # given a message that already carries an entity from another extractor
    earlier = {"entity": "intent_hint", "value": "x", "start": 0, "end": 1, "extractor": "Other"}
    message = Message(data={TEXT: "顺丰SF1234567890123，退59元", ENTITIES: [earlier]})
    component = ShopEntityExtractor.create(
        ShopEntityExtractor.get_default_config(), LocalModelStorage(tmp_path), Resource("shop_entities"),
        ExecutionContext(GraphSchema({})),
    )
    # when
    (processed,) = component.process([message])
    # then
    entities = processed.get(ENTITIES)
    assert entities[0] == earlier
    assert [(e["entity"], e["value"]) for e in entities[1:]] == [
        ("courier", "SF"), ("tracking_no", "SF1234567890123"), ("amount", "5900")]
    assert {e["extractor"] for e in entities[1:]} == {"ShopEntityExtractor"}
    assert ENTITIES in processed.output_properties


def test_component_leaves_messages_without_text_alone() -> None:
    # given an intent-only message (a button payload)
    message = Message(data={"intent": {"name": "greet"}})
    # when
    ShopEntityExtractor({}).process([message])
    # then
    assert message.get(ENTITIES) == []


def test_component_is_registered_for_config_yml() -> None:
    # given the name used in config.yml / when Rasa looks it up
    registered = DefaultV1Recipe._from_registry("bot.nlu.entities.ShopEntityExtractor")
    # then
    assert registered.clazz is ShopEntityExtractor
    assert DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR in registered.types
    assert not registered.is_trainable
