"""A hand-made dataset of 6 customers, 5 of them buyers (too few repeat buyers for a CLV fit), with a service
contact (an open complaint) and an opt-out: what a new user tries first."""

from __future__ import annotations

from pathlib import Path

CUSTOMERS = """source_customer_id,full_name,document_id,email,phone,birth_date,city,state,postal_code
C1,Ana Souza,52998224725,ana@example.com,31987654321,1980-01-02,Belo Horizonte,MG,30110-000
C2,Bruno Lima,11144477735,bruno@example.com,11976543210,1975-03-04,São Paulo,SP,01001-000
C3,Carla Dias,39053344705,carla@example.com,21965432109,1990-05-06,Rio de Janeiro,RJ,20010-000
C4,Diego Rocha,86288366757,diego@example.com,31954321098,1985-07-08,Contagem,MG,32010-000
C5,Elisa Melo,34608514300,elisa@example.com,41943210987,1995-09-10,Curitiba,PR,80010-000
C6,Fábio Nunes,71428793860,fabio@example.com,51932109876,1970-11-12,Porto Alegre,RS,90010-000
"""
PURCHASES = """order_id,source_customer_id,purchased_at,amount,product_type,store_type
O1,C1,2025-01-10 10:00:00,120.50,livros,ecommerce
O2,C1,2025-03-15 11:00:00,80.00,livros,own_store
O3,C1,2025-06-20 12:00:00,95.25,esporte,ecommerce
O4,C2,2025-02-01 09:30:00,300.00,eletronicos,partner_store
O5,C2,2025-05-05 14:00:00,150.00,eletronicos,ecommerce
O6,C3,2025-04-01 16:00:00,45.90,livros,ecommerce
O7,C4,2024-11-20 18:00:00,600.00,moveis,own_store
O8,C5,2025-06-01 10:15:00,35.00,esporte,ecommerce
O9,C5,2025-06-25 10:15:00,40.00,esporte,ecommerce
"""
SERVICE = """interaction_id,source_customer_id,occurred_at,channel,interaction_type,handled_by,is_resolved
P1,C1,2025-06-21 09:00:00,phone,complaint,agent,false
P2,C6,2025-05-02 10:00:00,email,information,agent,true
"""
CONSENTS = """source_customer_id,channel,status,recorded_at
C1,email,opt_in,2024-01-01 00:00:00
C2,email,opt_out,2025-01-01 00:00:00
C3,email,opt_in,2024-01-01 00:00:00
"""


def write_tiny_dataset(raw: Path) -> Path:
    """Write the extracts under `raw` (one source system each) and return `raw`."""
    for family, text in {
        "customers": CUSTOMERS,
        "purchases": PURCHASES,
        "service_interactions": SERVICE,
        "consents": CONSENTS,
    }.items():
        folder = raw / family / "crm"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{family}.csv").write_text(text, encoding="utf-8")
    return raw
