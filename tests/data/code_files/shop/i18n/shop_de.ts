<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de_DE">
<context>
    <name>CartView</name>
    <message>
        <source>Add to basket</source>
        <translation>In den Warenkorb</translation>
    </message>
    <message>
        <source>Checkout</source>
        <translation>Zur Kasse</translation>
    </message>
</context>
</TS>
