"""The one string catalogue: zh-CN first, English second — and the words and numbers built from it.

Every word a page shows comes from here: fixed strings (``CATALOGUE``, looked up with :func:`t`), the
states of orders and allocations, grades with their size classes (from :mod:`registry.grades`),
destination names (from :mod:`trading.geo`), masses with thousands separators in kg below 10 t and
in t above (:func:`mass`), money from fen (:func:`yuan`), ages ("12 分钟前", :func:`age`) and the
allocation notices rebuilt from their recorded figures (:func:`notice_text`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request

from registry.grades import BY_CODE
from trading.geo import CITIES

DEFAULT_LANG = "zh"
LANGS = ("zh", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "app_name": {"zh": "巫山脆李云仓", "en": "Wushan Crisp Plum Cloud Warehouse"},
    "orchards": {"zh": "果园", "en": "Orchards"},
    "orchard": {"zh": "果园", "en": "Orchard"},
    "orchard_id": {"zh": "编号", "en": "ID"},
    "name": {"zh": "名称", "en": "Name"},
    "township": {"zh": "乡镇", "en": "Township"},
    "area_mu": {"zh": "面积(亩)", "en": "Area (mu)"},
    "elevation_m": {"zh": "海拔(米)", "en": "Elevation (m)"},
    "planting_year": {"zh": "定植年份", "en": "Planted"},
    "tree_count": {"zh": "株数", "en": "Trees"},
    "total_orchards": {"zh": "果园总数", "en": "Orchards in total"},
    "total_area": {"zh": "总面积(亩)", "en": "Total area (mu)"},
    "prev": {"zh": "上一页", "en": "Previous"},
    "next": {"zh": "下一页", "en": "Next"},
    "switch_lang": {"zh": "English", "en": "中文"},
    # sign-in
    "sign_in": {"zh": "登录", "en": "Sign in"},
    "sign_out": {"zh": "退出", "en": "Sign out"},
    "username": {"zh": "用户名", "en": "Username"},
    "password": {"zh": "密码", "en": "Password"},
    "login_hint": {
        "zh": "果农用户名为果农编号(如 G-00001),合作社管理员为合作社编号。",
        "en": "Growers sign in with their grower ID (e.g. G-00001); managers with their cooperative ID.",
    },
    "err_wrong": {"zh": "用户名或密码错误。", "en": "Wrong username or password."},
    "err_missing": {"zh": "请输入用户名和密码。", "en": "Enter your username and password."},
    "err_csrf": {"zh": "表单已过期,请重新提交。", "en": "The form expired; please submit it again."},
    "err_throttled": {
        "zh": "登录失败次数过多,请 {s} 秒后再试。",
        "en": "Too many failed sign-ins; try again in {s} s.",
    },
    "signed_in_as": {"zh": "当前用户", "en": "Signed in as"},
    "role_grower": {"zh": "果农", "en": "Grower"},
    "role_buyer": {"zh": "采购商", "en": "Buyer"},
    "role_manager": {"zh": "合作社管理员", "en": "Cooperative manager"},
    "role_admin": {"zh": "系统管理员", "en": "Administrator"},
    # grower
    "my_orchard": {"zh": "我的果园", "en": "My orchard"},
    "now": {"zh": "当前状况", "en": "Conditions now"},
    "as_of": {"zh": "数据时间", "en": "As of"},
    "no_sensor_data": {
        "zh": "暂无传感器数据:网关尚未上报,或数据仍在传输中。",
        "en": "No sensor data yet: the gateway has not reported, or its data is still on its way.",
    },
    "rain_24h": {"zh": "24小时降雨", "en": "Rain, last 24 h"},
    "alerts": {"zh": "预警", "en": "Alerts"},
    "no_alerts": {"zh": "当前没有预警。", "en": "No open alerts."},
    "advice": {"zh": "建议", "en": "Advice"},
    "last_days": {"zh": "最近7天", "en": "Last 7 days"},
    "season": {"zh": "本季", "en": "This season"},
    "no_series": {"zh": "该时段没有数据。", "en": "No data for this period."},
    "forecast": {"zh": "产量预测", "en": "Yield forecast"},
    "no_forecast": {
        "zh": "尚无预测:模型还没有为这个果园运行。",
        "en": "No forecast yet: the model has not run for this orchard.",
    },
    "harvest_window": {"zh": "预计采收期", "en": "Expected harvest"},
    "bloom_date": {"zh": "盛花期", "en": "Full bloom"},
    "total_yield": {"zh": "预计总产量(公斤)", "en": "Expected total (kg)"},
    "band": {"zh": "P10–P90 区间", "en": "P10–P90 band"},
    "contracts": {"zh": "我的订单与预计收入", "en": "My contracts and expected income"},
    "no_contracts": {"zh": "暂无结算或订单信息。", "en": "No contracts or statements yet."},
    "trading_absent": {"zh": "交易模块尚未启用。", "en": "Trading is not available yet."},
    "expected_income": {"zh": "按合同预计收入", "en": "Expected income from contracts"},
    "mgmt_fee": {"zh": "管理费", "en": "management fee"},
    "picking_fee": {"zh": "采摘费", "en": "picking fee"},
    "dividend": {"zh": "分红", "en": "dividend"},
    "statement": {"zh": "结算单", "en": "Statement"},
    "offered_kg": {"zh": "可订(公斤)", "en": "Offered (kg)"},
    "unsold_warnings": {"zh": "滞销预警", "en": "Unsold-risk warnings"},
    "capacity_kg": {"zh": "容量(公斤)", "en": "Capacity (kg)"},
    "stock_kg": {"zh": "库存(公斤)", "en": "Stock (kg)"},
    "cold_room": {"zh": "冷库", "en": "Cold room"},
    "lots": {"zh": "批次", "en": "Lots"},
    "growers": {"zh": "户", "en": "growers"},
    "record_form": {"zh": "记录农事与观察", "en": "Record work and observations"},
    "observed_on": {"zh": "日期", "en": "Date"},
    "kind": {"zh": "类型", "en": "Kind"},
    "value": {"zh": "数值", "en": "Value"},
    "note": {"zh": "备注", "en": "Note"},
    "save": {"zh": "保存", "en": "Save"},
    "saved": {"zh": "已保存。", "en": "Saved."},
    "kind_work": {"zh": "农事作业", "en": "Farm work"},
    "kind_flower_density": {"zh": "花量(0–1)", "en": "Flower density (0–1)"},
    "kind_fruit_set": {"zh": "坐果(个/米枝条)", "en": "Fruit set (fruits per m of branch)"},
    "kind_pest": {"zh": "病虫害(受害株%)", "en": "Pests (% of trees)"},
    "kind_note": {"zh": "其他", "en": "Note"},
    "recent_records": {"zh": "最近记录", "en": "Recent records"},
    "no_records": {"zh": "还没有记录。", "en": "No records yet."},
    "records_absent": {
        "zh": "农事记录功能尚未启用(模型模块未安装)。",
        "en": "Farm records are not available yet (models package not installed).",
    },
    "no_orchards": {"zh": "没有可查看的果园。", "en": "No orchards to show."},
    # buyer
    "supply": {"zh": "预测供应(按周和等级)", "en": "Forecast supply by week and grade"},
    "no_supply": {"zh": "尚无供应预测。", "en": "No supply forecast yet."},
    "supply_band_note": {
        "zh": "柱为P50,误差线为各果园P10–P90之和(保守区间)。",
        "en": "Bars are P50; whiskers sum the orchards' P10–P90 (a conservative envelope).",
    },
    "place_order": {"zh": "下远期订单", "en": "Place a forward order"},
    "grade": {"zh": "等级", "en": "Grade"},
    "quantity_kg": {"zh": "数量(公斤)", "en": "Quantity (kg)"},
    "week_from": {"zh": "起始周(周一)", "en": "From week (Monday)"},
    "week_to": {"zh": "截止周(周一)", "en": "To week (Monday)"},
    "destination": {"zh": "目的地", "en": "Destination"},
    "price_yuan": {"zh": "价格(元/公斤)", "en": "Price (yuan/kg)"},
    "floor_price_yuan": {"zh": "保底价(元/公斤)", "en": "Floor price (yuan/kg)"},
    "submit_order": {"zh": "提交订单", "en": "Submit order"},
    "my_orders": {"zh": "我的订单", "en": "My orders"},
    "no_orders": {"zh": "还没有订单。", "en": "No orders yet."},
    "status": {"zh": "状态", "en": "Status"},
    "allocations": {"zh": "分配结果", "en": "Allocations"},
    "no_allocations": {"zh": "还没有分配。", "en": "No allocations yet."},
    "shipments": {"zh": "发货与追溯码", "en": "Shipments and trace codes"},
    "no_shipments": {"zh": "还没有发货。", "en": "No shipments yet."},
    "order_placed": {"zh": "订单已提交。", "en": "Order placed."},
    "order_failed": {"zh": "订单未提交", "en": "Order not placed"},
    "cancel": {"zh": "取消", "en": "Cancel"},
    # manager
    "overview": {"zh": "合作社总览", "en": "Cooperative at a glance"},
    "orchard_map": {"zh": "果园分布(经纬度,颜色表示状况)", "en": "Orchards by position (colour = condition)"},
    "colour_by": {"zh": "着色", "en": "Colour by"},
    "c_moisture": {"zh": "土壤含水量", "en": "Soil moisture"},
    "c_risk": {"zh": "风险", "en": "Risk"},
    "c_alerts": {"zh": "预警数", "en": "Open alerts"},
    "c_elevation": {"zh": "海拔", "en": "Elevation"},
    "device_health": {"zh": "设备健康", "en": "Device health"},
    "online_rate": {"zh": "在线率", "en": "Online rate"},
    "silent_gateways": {"zh": "静默网关", "en": "Silent gateways"},
    "stores_nothing": {"zh": "有上报、无数据", "en": "reports, stores nothing"},
    "unmapped_keys": {"zh": "个未识别字段", "en": "unmapped keys"},
    "no_device_data": {"zh": "尚无设备上报记录。", "en": "No device has reported yet."},
    "last_reading": {"zh": "最新数据", "en": "Newest reading"},
    "never": {"zh": "从未上报", "en": "never"},
    "battery": {"zh": "电池(V)", "en": "Battery (V)"},
    "supply_demand": {"zh": "供应与已承诺需求(按周)", "en": "Supply vs committed demand by week"},
    "unsold_gap": {"zh": "滞销风险周", "en": "Unsold-risk weeks"},
    "committed_kg": {"zh": "已承诺(公斤)", "en": "Committed (kg)"},
    "supply_p50_kg": {"zh": "预测P50(公斤)", "en": "Forecast P50 (kg)"},
    "warehouse": {"zh": "云仓库存与容量", "en": "Warehouse stock and capacity"},
    "job_runs": {"zh": "定时任务运行记录", "en": "Scheduled job runs"},
    "job": {"zh": "任务", "en": "Job"},
    "job_started": {"zh": "开始时间", "en": "Started"},
    "job_seconds": {"zh": "耗时(秒)", "en": "Seconds"},
    "job_outcome": {"zh": "结果", "en": "Outcome"},
    "job_ok": {"zh": "成功", "en": "OK"},
    "job_error": {"zh": "失败", "en": "Failed"},
    "job_running": {"zh": "运行中", "en": "Running"},
    "no_job_runs": {"zh": "调度器尚未运行任何任务。", "en": "The scheduler has not run any job yet."},
    "no_stock": {"zh": "仓库暂无库存。", "en": "The warehouse holds no stock."},
    "poverty_income": {"zh": "脱贫户收入", "en": "Income reaching poverty-alleviated households"},
    "no_statements": {"zh": "尚无结算单。", "en": "No statements yet."},
    "week": {"zh": "周", "en": "Week"},
    "kg": {"zh": "公斤", "en": "kg"},
    "yuan": {"zh": "元", "en": "yuan"},
    # trace
    "trace": {"zh": "产品追溯", "en": "Trace a product"},
    "trace_code": {"zh": "追溯码", "en": "Trace code"},
    "lookup": {"zh": "查询", "en": "Look up"},
    "trace_not_found": {"zh": "未找到该追溯码。", "en": "No product with this trace code."},
    # states (orders, allocation rows, jobs)
    "state_open": {"zh": "待分配", "en": "open"},
    "state_allocated": {"zh": "已分配", "en": "allocated"},
    "state_fulfilled": {"zh": "已履约", "en": "fulfilled"},
    "state_cancelled": {"zh": "已取消", "en": "cancelled"},
    "state_committed": {"zh": "已确定", "en": "committed"},
    "state_expected": {"zh": "预计", "en": "expected"},
    "state_ok": {"zh": "成功", "en": "OK"},
    "state_error": {"zh": "失败", "en": "failed"},
    "state_running": {"zh": "运行中", "en": "running"},
    # units and ages
    "unit_kg": {"zh": "公斤", "en": "kg"},
    "unit_t": {"zh": "吨", "en": "t"},
    "age_now": {"zh": "刚刚", "en": "just now"},
    "age_min": {"zh": "{n} 分钟前", "en": "{n} min ago"},
    "age_hour": {"zh": "{n} 小时前", "en": "{n} h ago"},
    "age_day": {"zh": "{n} 天前", "en": "{n} days ago"},
    # allocation notices
    "notice_new": {"zh": "订单 {order} 已分配", "en": "Order {order} allocated"},
    "notice_changed": {"zh": "订单 {order} 重新分配", "en": "Order {order} re-allocated"},
    "notice_orchard_new": {"zh": "果园 {orchard} 已纳入订单供货", "en": "Orchard {orchard} now supplies orders"},
    "notice_orchard_changed": {"zh": "果园 {orchard} 的供货安排已调整", "en": "Orchard {orchard} supply plan changed"},
    "committed": {"zh": "确定量", "en": "committed"},
    "expected": {"zh": "预计量", "en": "expected"},
    "shortfall": {"zh": "缺口", "en": "shortfall"},
    "page_of": {"zh": "第 {a}–{b} 条,共 {n} 条", "en": "{a}–{b} of {n}"},
    # buyer order book
    "stock": {"zh": "库存", "en": "Stock"},
    "statistics_report": {"zh": "统计报告", "en": "Statistics report"},
    "stored_reports": {"zh": "定时生成的报告", "en": "Reports made by the scheduler"},
    "period_week": {"zh": "上周", "en": "Last week"},
    "period_month": {"zh": "上月", "en": "Last month"},
    "period_season": {"zh": "本季至今", "en": "Season so far"},
    "forecast_words": {
        "zh": "预计 {start} 至 {end} 采收,约 {p50};十有八九在 {p10} 到 {p90} 之间。",
        "en": "Harvest expected {start} to {end}: about {p50}; 8 times in 10 between {p10} and {p90}.",
    },
    "updated": {"zh": "更新于", "en": "updated"},
    "contract_total": {"zh": "合计", "en": "Total"},
    "contract_value": {"zh": "合同金额(元)", "en": "Contract value (yuan)"},
    "outbox_pending": {
        "zh": "{n} 条记录保存在手机上,联网后自动上传",
        "en": "{n} record(s) kept on this phone; they upload when online",
    },
    "outbox_synced": {"zh": "记录已全部上传", "en": "All records uploaded"},
    "count_form": {"zh": "抽样数果", "en": "Sample-tree fruit count"},
    "count_hint": {
        "zh": "坐果后选 5 至 10 棵有代表性的树,数每棵树上的果数;下一次产量预测会据此校正本园的产量和区间。",
        "en": "After fruit set, pick 5 to 10 typical trees and count the fruit on each; the next forecast uses"
              " the counts to correct this orchard's yield and its range.",
    },
    "count_tree": {"zh": "树号", "en": "Tree"},
    "count_fruit": {"zh": "果数", "en": "Fruits"},
    "count_add_tree": {"zh": "+ 再加一棵树", "en": "+ Add a tree"},
    "count_mean_g": {"zh": "平均单果重(克,可不填)", "en": "Mean fruit mass (g, optional)"},
    "count_saved": {"zh": "数果记录已保存。", "en": "Fruit count saved."},
    "count_recent": {"zh": "最近的数果", "en": "Recent counts"},
    "count_row": {"zh": "{trees} 棵树,平均每棵 {mean} 个果", "en": "{trees} trees, {mean} fruits a tree on average"},
    "count_none": {"zh": "还没有数果记录。", "en": "No fruit counts yet."},
    "count_need_trees": {"zh": "请至少填一棵树的果数", "en": "Enter the fruit count of at least one tree"},
    "outbox_offline": {"zh": "当前离线", "en": "offline now"},
    "outbox_refused": {
        "zh": "有记录被服务器拒绝(数值不合规)",
        "en": "a record was refused by the server (invalid value)",
    },
    "jobname_refresh_rollups": {"zh": "汇总传感器数据", "en": "Refresh sensor rollups"},
    "jobname_device_alerts": {"zh": "设备离线检查", "en": "Device offline check"},
    "jobname_ensure_partitions": {"zh": "准备数据分区", "en": "Prepare data partitions"},
    "jobname_nightly_forecast": {"zh": "夜间产量预测", "en": "Nightly yield forecast"},
    "jobname_reallocate": {"zh": "重新分配订单", "en": "Re-allocate orders"},
    "jobname_unsold_risk_digest": {"zh": "滞销风险汇总", "en": "Unsold-risk digest"},
    "jobname_retention": {"zh": "清理过期数据", "en": "Retention clean-up"},
    "jobname_statistics_report": {"zh": "统计报告", "en": "Statistics report"},
    "capacity": {"zh": "容量", "en": "Capacity"},
    "supply_p50": {"zh": "预测P50", "en": "Forecast P50"},
    "order_book": {"zh": "我的订单簿", "en": "My order book"},
    "order_no": {"zh": "订单号", "en": "Order"},
    "ordered": {"zh": "订购量", "en": "Ordered"},
    "weeks": {"zh": "交货周", "en": "Weeks"},
    "harvest_week": {"zh": "采收周", "en": "Harvest week"},
    "delivery_week": {"zh": "交货周", "en": "Delivery week"},
    "by_week": {"zh": "按周明细", "en": "By week"},
    "amend": {"zh": "修改", "en": "Amend"},
    "save_changes": {"zh": "保存修改", "en": "Save changes"},
    "order_amended": {
        "zh": "订单已修改,下次分配将按新数量安排。",
        "en": "Order amended; the next allocation uses the new figures.",
    },
    "order_cancelled": {"zh": "订单已取消。", "en": "Order cancelled."},
    "download_csv": {"zh": "下载 CSV", "en": "Download CSV"},
    "download_xlsx": {"zh": "下载 Excel", "en": "Download Excel"},
    "allocation_detail": {"zh": "分配明细(按果园)", "en": "Allocation detail (by orchard)"},
    "notices": {"zh": "分配变动通知", "en": "What changed in the allocation"},
    "step1": {"zh": "① 等级和数量", "en": "1 · Grade and quantity"},
    "step2": {"zh": "② 交货周和目的地", "en": "2 · Weeks and destination"},
    "step3": {"zh": "③ 价格", "en": "3 · Price"},
    "err_positive": {"zh": "请输入大于 0 的数。", "en": "Enter a number above 0."},
    "err_weeks": {"zh": "截止周不能早于起始周。", "en": "The last week cannot come before the first."},
    "err_floor": {"zh": "保底价不能高于价格。", "en": "The floor price cannot be above the price."},
    "order_summary": {"zh": "将订购", "en": "You order"},
    # spot trading, hall counter, glut offers (issue 17)
    "spot_title": {"zh": "现货库存", "en": "Stock for sale"},
    "hall_title": {"zh": "交易大厅柜台", "en": "Hall counter"},
    "glut_title": {"zh": "滞销应急收购", "en": "Glut emergency channel"},
    "site": {"zh": "仓库", "en": "Site"},
    "lot": {"zh": "批次", "en": "Lot"},
    "available_kg": {"zh": "可售(公斤)", "en": "Available (kg)"},
    "harvested_on": {"zh": "采收日期", "en": "Harvested"},
    "certs": {"zh": "认证", "en": "Certification"},
    "cold_chain": {"zh": "冷链", "en": "Cold chain"},
    "list_price": {"zh": "挂牌价(元/公斤)", "en": "List price (yuan/kg)"},
    "reserve": {"zh": "预订", "en": "Reserve"},
    "confirm": {"zh": "确认购买", "en": "Confirm"},
    "hand_over": {"zh": "交付(提货/发货)", "en": "Hand over"},
    "my_sales": {"zh": "我的现货订单", "en": "My spot purchases"},
    "sales_here": {"zh": "本仓销售", "en": "Sales at this site"},
    "sale_id": {"zh": "单号", "en": "Sale"},
    "amount_yuan": {"zh": "金额(元)", "en": "Amount (yuan)"},
    "expires": {"zh": "保留至", "en": "Held until"},
    "papers": {"zh": "单据", "en": "Papers"},
    "trace_codes": {"zh": "追溯码", "en": "Trace codes"},
    "record_sale": {"zh": "记录现场销售", "en": "Record a counter sale"},
    "payment": {"zh": "付款方式", "en": "Payment"},
    "pay_cash": {"zh": "现金", "en": "Cash"},
    "pay_transfer": {"zh": "转账", "en": "Transfer"},
    "walk_in": {"zh": "购货人(散客可不填)", "en": "Buyer's name (optional)"},
    "sell": {"zh": "成交", "en": "Sell"},
    "done": {"zh": "已完成", "en": "Done"},
    "failed": {"zh": "未成功", "en": "Not done"},
    "not_priced": {"zh": "今日未挂牌", "en": "not priced today"},
    "set_price": {"zh": "设定今日挂牌价", "en": "Set today's list price"},
    "warnings_now": {"zh": "当前滞销预警", "en": "Unsold-risk warnings"},
    "surplus_kg": {"zh": "富余(公斤)", "en": "Surplus (kg)"},
    "floor_price": {"zh": "保底价(元/公斤)", "en": "Floor price (yuan/kg)"},
    "open_offer": {"zh": "开启定向收购", "en": "Open to institutional buyers"},
    "offers": {"zh": "应急收购要约", "en": "Glut offers"},
    "glut_offered_kg": {"zh": "要约(公斤)", "en": "Offered (kg)"},
    "accepted_kg": {"zh": "已认购(公斤)", "en": "Taken (kg)"},
    "remaining_kg": {"zh": "剩余(公斤)", "en": "Left (kg)"},
    "accept": {"zh": "认购", "en": "Take"},
    "partners": {"zh": "合作单位本季采购", "en": "Partners this season"},
    "pledge": {"zh": "承诺(元)", "en": "Pledge (yuan)"},
    "purchased": {"zh": "已采购(元)", "en": "Bought (yuan)"},
    "none_yet": {"zh": "暂无", "en": "None yet"},
    "st_held": {"zh": "保留中", "en": "Held"},
    "st_confirmed": {"zh": "已确认", "en": "Confirmed"},
    "st_delivered": {"zh": "已交付", "en": "Delivered"},
    "st_expired": {"zh": "已过期", "en": "Expired"},
    "st_cancelled": {"zh": "已取消", "en": "Cancelled"},
    "st_open": {"zh": "开放", "en": "Open"},
    "st_closed": {"zh": "已结束", "en": "Closed"},
    # the consumer's page of a lot (GS1 Digital Link, yuncang/web/pages/lot.py)
    "lot_title": {"zh": "巫山脆李 · 产品溯源", "en": "Wushan crisp plum · traceability"},
    "lot_grade": {"zh": "等级", "en": "Grade"},
    "lot_origin": {"zh": "产地", "en": "Origin"},
    "lot_elevation": {"zh": "海拔", "en": "Elevation"},
    "lot_orchards": {"zh": "来自果园数", "en": "Orchards"},
    "lot_harvested": {"zh": "采收日期", "en": "Harvested"},
    "lot_certs": {"zh": "认证", "en": "Certification"},
    "lot_no_certs": {"zh": "暂无认证记录", "en": "No certification on record"},
    "lot_season": {"zh": "果园这一季", "en": "The orchard's season"},
    "lot_season_line": {"zh": "最高气温 {tmax}°C, 最低 {tmin}°C, 降雨 {rain} 毫米, 霜冻 {frost} 天, 高温 {heat} 天 ({days} 天有数据)",
                        "en": "Highest {tmax} °C, lowest {tmin} °C, rain {rain} mm, {frost} frost days, {heat} hot days ({days} days of data)"},
    "lot_no_season": {"zh": "暂无果园传感器数据", "en": "No orchard sensor data yet"},
    "lot_chart_legend": {"zh": "红线: 日最高气温; 蓝线: 日最低气温; 蓝柱: 降雨", "en": "Red: daily high; blue: daily low; bars: rain"},
    "lot_cold": {"zh": "冷链", "en": "Cold chain"},
    "lot_cold_to_room": {"zh": "采收后 {h} 小时入冷库", "en": "Into cold storage {h} h after harvest"},
    "lot_cold_stay": {"zh": "{room}: {tmin}~{tmax}°C, 超温 {above} 小时", "en": "{room}: {tmin} to {tmax} °C, {above} h above the limit"},
    "lot_cold_ok": {"zh": "全程温度在限值内", "en": "Kept within the limits throughout"},
    "lot_cold_bad": {"zh": "最大偏离 {x}°C", "en": "Worst excursion {x} °C"},
    "lot_cold_none": {"zh": "暂无冷库记录", "en": "No cold-storage record"},
    "lot_complain": {"zh": "投诉与反馈", "en": "Complaints and feedback"},
    "lot_complain_category": {"zh": "问题类别", "en": "Problem"},
    "lot_complain_text": {"zh": "问题描述", "en": "What happened"},
    "lot_complain_contact": {"zh": "联系方式 (可选)", "en": "Contact (optional)"},
    "lot_complain_send": {"zh": "提交", "en": "Send"},
    "lot_complain_thanks": {"zh": "已收到您的投诉 (编号 {n}), 合作社将尽快处理。", "en": "Complaint received (no. {n}); the cooperative will answer soon."},
    "lot_not_found": {"zh": "没有找到该批次", "en": "No such lot"},
}


def lang_of(request: Request) -> str:
    """Language from ``?lang=``, then the ``lang`` cookie, else zh."""
    q = request.query_params.get("lang") or request.cookies.get("lang") or DEFAULT_LANG
    return q if q in LANGS else DEFAULT_LANG


def t(key: str, lang: str) -> str:
    entry = CATALOGUE.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry[DEFAULT_LANG]


def state(code: str | None, lang: str) -> str:
    """An order, allocation or job state in words ('committed' -> 已确定)."""
    return t(f"state_{code}", lang) if code and f"state_{code}" in CATALOGUE else (code or "—")


def grade(code: str | None, lang: str, *, size: bool = True) -> str:
    """A grade with its size class: 'XL' -> 特级果(≥45 mm) / Premium (≥45 mm)."""
    g = BY_CODE.get(code or "")
    if g is None:
        return code or "—"
    if lang != "zh":
        return g.label_en if size else g.label_en.split(" (")[0]
    if not size:
        return g.label_zh
    lo, hi = int(g.min_diameter_mm), int(g.max_diameter_mm)
    return f"{g.label_zh}(≥{lo} mm)" if g.rank == 0 else f"{g.label_zh}({lo}–{hi} mm)"


_PLACES = {c.key: c for c in CITIES}


def place(key: str | None, lang: str) -> str:
    """A destination's name ('hangzhou' -> 杭州 / Hangzhou); several (comma-separated) are each named."""
    if not key:
        return "—"
    parts = [k.strip() for k in str(key).split(",")]
    sep = "、" if lang == "zh" else ", "
    return sep.join((_PLACES[k].name_zh if lang == "zh" else _PLACES[k].name_en) if k in _PLACES else k for k in parts)


def mass(kg: Any, lang: str) -> str:
    """A mass for reading: '8,520 公斤' below 10 t, '324.1 吨' at 10 t and above ('—' for none)."""
    if kg is None:
        return "—"
    v = float(kg)
    if abs(v) >= 10_000:
        return f"{v / 1000:,.1f} {t('unit_t', lang)}"
    return f"{v:,.0f} {t('unit_kg', lang)}"


def yuan(fen: Any, digits: int = 2) -> str:
    """Money held in fen shown in yuan with thousands separators ('1,234.50')."""
    return "—" if fen is None else f"{Decimal(int(fen)) / 100:,.{digits}f}"


def age(when: datetime | None, lang: str, now: datetime | None = None) -> str:
    """How long ago: '刚刚', '12 分钟前', '3 小时前', '2 天前'."""
    if when is None:
        return "—"
    s = ((now or datetime.now(UTC)) - when).total_seconds()
    if s < 60:
        return t("age_now", lang)
    if s < 3600:
        return t("age_min", lang).format(n=int(s // 60))
    if s < 86400 * 2:
        return t("age_hour", lang).format(n=int(s // 3600))
    return t("age_day", lang).format(n=int(s // 86400))


def notice_text(n: dict[str, Any], lang: str) -> str:
    """An allocation notice in words, rebuilt from its recorded figures (``detail.before``/``after``):
    'Order O-1 re-allocated: committed 324.1 t → 300.0 t, expected …, shortfall …'."""
    d = n.get("detail") or {}
    before, after = d.get("before") or {}, d.get("after") or {}
    changed = n.get("kind") == "allocation_changed"
    if n.get("order_id"):
        head = t("notice_changed" if changed else "notice_new", lang).format(order=n["order_id"])
    else:
        head = t("notice_orchard_changed" if changed else "notice_orchard_new", lang).format(
            orchard=n.get("orchard_id") or "")
    parts = []
    for key in ("committed", "expected"):
        a = after.get(f"{key}_kg")
        if a is None:
            continue
        b = before.get(f"{key}_kg")
        if changed and b is not None and abs(float(b) - float(a)) >= 0.5:
            parts.append(f"{t(key, lang)} {mass(b, lang)} → {mass(a, lang)}")
        else:
            parts.append(f"{t(key, lang)} {mass(a, lang)}")
    if after.get("shortfall_kg") is not None and float(after["shortfall_kg"]) >= 0.5:
        parts.append(f"{t('shortfall', lang)} {mass(after['shortfall_kg'], lang)}")
    sep = "," if lang == "zh" else ", "
    return head + (":" if lang == "zh" else ": ") + sep.join(parts) if parts else head
