# Copyright (c) 2024 Example Shop Authors
# SPDX-License-Identifier: MIT
#
# Permission is hereby granted, free of charge, to any person obtaining a copy of this software.

"""Stock levels per warehouse, with reservations that expire."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Reservation:
    sku: str
    quantity: int
    expires_at: float


@dataclass
class Warehouse:
    name: str
    stock: dict[str, int] = field(default_factory=dict)
    reservations: list[Reservation] = field(default_factory=list)

    def available(self, sku: str) -> int:
        """Units on hand minus the units still reserved."""
        self.expire()
        held = sum(r.quantity for r in self.reservations if r.sku == sku)
        return self.stock.get(sku, 0) - held

    def reserve(self, sku: str, quantity: int, ttl: float = 900.0) -> bool:
        if quantity <= 0 or self.available(sku) < quantity:
            return False
        self.reservations.append(Reservation(sku, quantity, time.time() + ttl))
        return True

    def expire(self) -> None:
        now = time.time()
        self.reservations = [r for r in self.reservations if r.expires_at > now]
