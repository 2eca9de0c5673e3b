-- Customers whose next best offer goes out by email this period (customer_next_best_offer): eligible, not held
-- out, with a email.
{{ next_best_offer_segment('email', 'email') }}
