Shipping report for order {{@order.id}} ({{@customer}})
Ordered: {{@order.items}}
Status: {{ status: choice ["shipped", "delayed", "lost"] }}
Days late: {{ days_late: int min=0 max=30 }}
Tracking code: {{ tracking: regex "[A-Z]{2}[0-9]{6}" }}
Customer mood (1-5): {{ mood: int min=1 max=5 }}
Note to the customer: {{ note: text max_tokens=24 multiline=false }}
