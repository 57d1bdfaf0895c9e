"""What the load bench's buyers say: the whole refund conversation of a buyer with one delivered 针织开衫, each
step's phrasings (a conversation picks one of them, so the parse cache meets texts as varied as buyers write
them) and what the answer must contain. Standard library only: tests/nlu checks that the bot understands every
phrasing."""

def _quality_reasons() -> tuple[str, ...]:
    """Quality complaints like buyers write them: 5 × 6 × 6 × 7 × 4 = 5,040 sentences, so that few repeat (a
    buyer's own words seldom repeat another's)."""
    hello = ["", "亲，", "客服你好，", "你好，", "在吗，"]
    what = ["衣服", "这件衣服", "开衫", "这件开衫", "毛衣", "针织开衫"]
    when = ["穿了一次就", "才穿两天就", "刚到手就", "洗了一次就", "没穿几次就", "第一次穿就"]
    defect = ["开线了", "破了个洞", "脱线了", "起球了", "掉色了", "扣子掉了", "线头全开了"]
    ask = ["，我要退货", "，我要退货退款", "，质量太差了，要退货", "，这质量我要退货"]
    return tuple(h + a + b + c + d for h in hello for a in what for b in when for c in defect for d in ask)


STEPS: list[tuple[str, tuple[str, ...], str]] = [
    ("greeting", ("你好", "您好", "你好，在吗", "在吗", "您好，在吗"), "您好"),
    ("quality reason", _quality_reasons(), "照片"),
    ("photos later", ("/deny",), "¥199.00"),
    ("确认", ("确认", "确认提交", "好的，确认", "确认，提交吧", "没问题，确认"), "已为您提交"),
    ("status", ("我的退款到哪了", "退款到哪一步了", "我的退款怎么样了", "退款进度怎么样了", "退款处理到哪了"),
     "商家审核中"),
    ("thanks", ("谢谢", "谢谢你", "好的，谢谢", "多谢", "谢谢啦"), "不客气"),
]
CONFIRM_STEP = 3  # a conversation answered this far has asked for its request
