# 质检记录表 (QA findings sheet)：主管抽查会话后登记的问题。
# 日期只写到天时记为当天 00:00:00。
profile qa_sheet "质检记录表"
match 日期 客服 类别

event qa_flag
    ts           = 日期
    agent        = 客服
    category     = 类别
    note         = 说明 | 备注
    conversation = 会话 | 会话ID | 会话编号
