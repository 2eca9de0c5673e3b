-- Customers whose next best offer goes out by whatsapp this period (customer_next_best_offer): eligible, not held
-- out, with a phone.
{{ next_best_offer_segment('whatsapp', 'phone') }}
