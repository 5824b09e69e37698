from flask_stubber import Template

order = Template("order", start_state="awaiting_payment", create_webhook=True)
order.state("awaiting_payment", actions=["payment_received", "cancel", "add_note"])
order.state("paid", actions=["ship", "add_note"])
order.state("shipped")
order.state("cancelled")
order.action(
    "payment_received",
    to_state="paid",
    webhook=True,
    fields={
        "amount": {
            "fieldtype": "number",
            "params": {"min": 0},
            "validations": [
                {"validationtype": "required", "invalid_message": "amount is required"},
            ],
        },
        "currency": {
            "fieldtype": "select",
            "params": {
                "options": [{"label": "Rand", "value": "ZAR"}, {"label": "Dollar", "value": "USD"}],
            },
        },
    },
)
order.action("add_note", webhook=True, post_data_on_root=True)
order.action("cancel", to_state="cancelled")
order.action("ship", to_state="shipped", webhook=True, methods=["POST"])
