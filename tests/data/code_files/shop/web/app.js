// Cart widget: keeps the basket in localStorage and renders the total.
const KEY = "basket";

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY)) || [];
  } catch (e) {
    return [];
  }
}

function save(items) {
  localStorage.setItem(KEY, JSON.stringify(items));
}

export function add(sku, price) {
  const items = load();
  const found = items.find((item) => item.sku === sku);
  if (found) {
    found.count += 1;
  } else {
    items.push({ sku, price, count: 1 });
  }
  save(items);
  return total(items);
}

export function total(items = load()) {
  return items.reduce((sum, item) => sum + item.price * item.count, 0);
}
