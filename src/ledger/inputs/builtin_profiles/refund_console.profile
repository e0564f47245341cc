# 淘宝/天猫 千牛「退款管理」导出 (refund console export)
# 一行退款 → 一个 refund_requested（申请），有完结时间时再加一个 refund_handled（完结）。
# 不同版本的导出列名不同、列的顺序不同，有的列还会重复（读作 退款完结时间.1）：
# 一律按列名取值，多个列名用 | 分开，取第一个有值的。
# 两次下载里同一笔退款内容不同时，用较新的那次（status 已完结的、updated 修改时间较晚的、较新的下载）。
profile refund_console "淘宝/天猫 退款管理 导出"
match 退款编号 退款的申请时间

event refund_requested
    id     = "refund:" + 退款编号 + ":requested"
    ts     = 退款的申请时间
    order  = 订单编号
    buyer  = 买家会员名称 | 买家会员名 | 买家昵称
    agent  = 退款操作人 | 审核操作人 | 退款操作人/审核操作人
    reason = 买家退款原因 | 退款原因
    amount = 买家退款金额 | 退款金额
    status = 退款状态
    updated = 修改时间 | 退款修改时间 | 最后修改时间

event refund_handled when 退款完结时间 | 退款完结时间.1
    id     = "refund:" + 退款编号 + ":handled"
    ts     = 退款完结时间 | 退款完结时间.1
    order  = 订单编号
    buyer  = 买家会员名称 | 买家会员名 | 买家昵称
    agent  = 退款操作人 | 审核操作人 | 退款操作人/审核操作人
    status = 退款状态
