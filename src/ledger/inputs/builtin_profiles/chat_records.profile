# 千牛 / 客服工作台「聊天记录」导出 (chat-record export)
# 一行一条消息。发送账号：客服写成 店铺名:子账号，买家是买家的会员名。
# 导出里没有会话编号时，同一个客户名的消息按时间排好，间隔超过 30 分钟就算新的会话；
# 买家的消息记在这个会话里第一个回复的客服名下。
profile chat_records "聊天记录导出"
match 客户名 发送时间 发送内容 发送账号 账号类型

event message
    ts           = 发送时间
    conversation = 会话ID | 会话编号 | 会话
    buyer        = 客户名
    agent        = 发送账号 if 账号类型 = 客服 子账号 主账号
    sender       = map 账号类型 客服=agent 子账号=agent 主账号=agent 买家=buyer 客户=buyer 系统=system 机器人=agent
    kind         = map 账号类型 机器人=auto_reply *=text
    text         = 发送内容

conversation by 客户名 gap 30m
